package chat_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/chat"
	"github.com/chatmux/chatmux/store"
)

func TestStoreError(t *testing.T) {
	if chat.StoreError(nil) != nil {
		t.Fatal("nil")
	}
	for _, v := range []struct {
		err    error
		code   int
		detail string
	}{
		{store.ErrNotFound, 4004, `"Resource not found."`},
		{fmt.Errorf("x: %w", store.ErrNotFound), 4004, `"Resource not found."`},
		{fmt.Errorf("constraint x: %w", store.ErrConflict), 4005, `"Database constraint violated."`},
		{store.CapError(store.Channel), 4003, `["Maximum number of channel subscribers exceeded"]`},
		{store.Invariant(store.ErrDuplicateOneToOne, "", store.MsgChatExists), 4003, `["Chat already exists"]`},
		{store.ErrDuplicateOneToOne, 4003, `["Chat already exists"]`},
		{store.ErrOneToOneParticipants, 4003, `["A one to one chat can only have 2 participants"]`},
		{store.UnknownUserError("participants", 99), 4003, `{"participants":["Invalid pk \"99\" - object does not exist."]}`},
		{store.Invalid("name", "This field is required."), 4003, `{"name":["This field is required."]}`},
		{store.Invalid("", "Bad."), 4003, `["Bad."]`},
		{chatmux.PermissionDenied("no"), 4002, `"no"`},
		{errors.New("boom"), 4006, `"Internal server error."`},
		{fmt.Errorf("db: %w", store.ErrUnavailable), 4013, `"Service temporarily unavailable, try again."`},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), 4013, `"Service temporarily unavailable, try again."`},
		{context.Canceled, 4006, `"Internal server error."`},
	} {
		e := chatmux.AsError(chat.StoreError(v.err))
		b, _ := jsonMarshal(e.Detail)
		if e.Code != v.code || !jsonEqual(string(b), v.detail) {
			t.Errorf("StoreError(%v) = %d %s, want %d %s", v.err, e.Code, b, v.code, v.detail)
		}
	}
}
