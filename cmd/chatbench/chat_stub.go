//go:build !chatbench_chat

package main

import (
	"log/slog"

	"errors"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// chatRouter would register the chat domain; this build has none yet.
func chatRouter(st store.Store, notifications bool, logger *slog.Logger) (chatmux.Router, error) {
	return nil, errors.New("this chatbench was built without the chat domain: use -bare")
}
