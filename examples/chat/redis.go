package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/chatmux/chatmux/groups"
)

// openRedis returns the Redis pub/sub broker for url
// (redis://[user:password@]host:port/db), its channel names starting with
// prefix ("" means the broker's default, "chatmux:"): dispatches published
// on any node reach the members of a group on every node.
//
// It does not wait for Redis (groups.RedisOptions.ConnectInBackground): a
// node starts while Redis is down, its connections start stale (they
// receive no room dispatches) and /healthz reports the broker unavailable;
// once Redis answers and the node's subscriptions are confirmed, every
// connection gets chat.resync (docs/protocol.md#resync). Only an invalid
// URL is an error.
func openRedis(_ context.Context, url, prefix string, logger *slog.Logger) (groups.Broker, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("invalid REDIS_URL: %w", err)
	}
	client := redis.NewClient(opts)
	b, err := groups.NewRedis(client, groups.RedisOptions{Prefix: prefix, Logger: logger, ConnectInBackground: true})
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("failed to start the Redis broker: %w", err)
	}
	return redisBroker{Redis: b, client: client}, nil
}

// redisBroker is the Redis broker with its own client, and a health check.
// It has the broker's OnAvailability (groups.Availability), so the server
// learns when Redis is lost and back.
type redisBroker struct {
	*groups.Redis
	client *redis.Client
}

// Ping reports whether the broker's pub/sub connection is up and Redis
// answers a PING.
func (b redisBroker) Ping(ctx context.Context) error {
	if !b.Up() {
		return errors.New("the Redis pub/sub connection is down")
	}
	return b.client.Ping(ctx).Err()
}

// Close stops the broker, then closes its client.
func (b redisBroker) Close() error {
	return errors.Join(b.Redis.Close(), b.client.Close())
}
