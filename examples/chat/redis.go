package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatmux/chatmux/groups"
)

// openRedis returns the Redis pub/sub broker for url
// (redis://[user:password@]host:port/db), its channel names starting with
// prefix ("" means the broker's default, "chatmux:"): dispatches published
// on any node reach the members of a group on every node.
//
// It does not need Redis to start (groups.RedisOptions.ConnectInBackground):
// it waits at most redisStartWait for the first connection, and when Redis
// refuses it or does not answer in time, the node starts without it: its
// connections start stale (they receive no room dispatches) and /healthz
// reports the broker unavailable; once Redis answers and the node's
// subscriptions are confirmed, every connection gets chat.resync
// (docs/protocol.md#resync). Only an invalid URL is an error.
func openRedis(ctx context.Context, url, prefix string, logger *slog.Logger) (groups.Broker, error) {
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
	if !waitRedis(ctx, b, redisStartWait) {
		logger.Warn("chat: Redis does not answer: starting without it; connections receive no room dispatches "+
			"until it does, then chat.resync", "redis", opts.Addr)
	}
	return redisBroker{Redis: b, client: client}, nil
}

// redisStartWait bounds the wait for Redis at start.
const redisStartWait = 2 * time.Second

// waitRedis waits until b is up, and reports whether it is: it gives up
// when b reports that it is not (its first attempt to connect failed),
// after d, or when ctx ends. Its availability callback stays registered
// (a broker has no way to remove one); later calls find the channel full
// or unread and return at once.
func waitRedis(ctx context.Context, b *groups.Redis, d time.Duration) bool {
	down := make(chan struct{}, 1)
	b.OnAvailability(func(available bool) {
		if !available {
			select {
			case down <- struct{}{}:
			default:
			}
		}
	})
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond) // polling interval of Up
	defer tick.Stop()
	for !b.Up() {
		select {
		case <-down:
			return false
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
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
