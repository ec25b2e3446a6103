package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/chatmux/chatmux/groups"
)

// openRedis returns the Redis broker for url.
//
// TODO(redis): this build has no Redis broker (groups.NewRedis has not
// landed). Until it does, setting REDIS_URL is a start-up error rather than
// a silent fall-back to the in-process broker, which would split a
// multi-node deployment into islands.
func openRedis(ctx context.Context, url string, logger *slog.Logger) (groups.Broker, error) {
	_, _ = ctx, url
	logger.Error("chat: REDIS_URL is set but this build has no Redis broker")
	return nil, errors.New("REDIS_URL is set but this build has no Redis broker")
}
