package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/store"
)

// healthCheckTimeout bounds each check of /healthz. The store and the
// broker are checked at the same time, so /healthz answers within it (plus
// the time to write the answer): under 1 s, whatever the store and the
// broker do.
const healthCheckTimeout = 800 * time.Millisecond

// errBrokerAway reports a broker that lost contact with the other nodes:
// the server's connections are stale until it is back.
var errBrokerAway = errors.New("the broker lost contact with the other nodes")

// health checks the store and the broker at the same time, each within
// healthCheckTimeout.
func (a *app) health(ctx context.Context) (storeErr, brokerErr error) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); storeErr = within(ctx, healthCheckTimeout, a.checkStore) }()
	go func() { defer wg.Done(); brokerErr = within(ctx, healthCheckTimeout, a.checkBroker) }()
	wg.Wait()
	return storeErr, brokerErr
}

// healthz answers {"store":"ok","broker":"ok"} with 200 when both are
// available, and 503 with "unavailable" for what is not, within 1 s.
func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	storeErr, brokerErr := a.health(r.Context())
	status := func(what string, err error) string {
		if err != nil {
			a.logger.Warn("chat: health check failed", "component", what, "err", err)
			return "unavailable"
		}
		return "ok"
	}
	body := map[string]string{"store": status("store", storeErr), "broker": status("broker", brokerErr)}
	code := http.StatusOK
	if storeErr != nil || brokerErr != nil {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// within runs check with a context that ends after d, and returns after at
// most d even when check does not (a connection that hangs, which no
// context reaches): check then goes on in the background and its result is
// dropped.
func within(ctx context.Context, d time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- check(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// A check that answered just as the time ran out still counts.
		select {
		case err := <-done:
			return err
		default:
		}
		return fmt.Errorf("no answer within %v: %w", d, ctx.Err())
	}
}

// pinger is a store or a broker with a health check of its own: PostgreSQL
// ((*postgres.Store).Ping), Redis (redisBroker.Ping).
type pinger interface {
	Ping(ctx context.Context) error
}

// checkStore checks the store with its Ping method (PostgreSQL), else with
// a cheap read.
func (a *app) checkStore(ctx context.Context) error {
	return pingStore(ctx, a.store)
}

func pingStore(ctx context.Context, st store.Store) error {
	if p, ok := st.(pinger); ok {
		return p.Ping(ctx)
	}
	_, err := st.Users(ctx, []int64{1})
	return err
}

// checkBroker reports the broker unavailable while the server's
// connections are stale (Server.BrokerAvailable: the broker reported that
// it lost the other nodes), then checks it with its Ping method (Redis:
// its pub/sub connection is up and Redis answers a PING), else by
// publishing a control message to a group that has no members: it reaches
// the broker's transport and nobody else.
func (a *app) checkBroker(ctx context.Context) error {
	if !a.srv.BrokerAvailable() {
		return errBrokerAway
	}
	if p, ok := a.broker.(pinger); ok {
		return p.Ping(ctx)
	}
	return a.broker.Publish(ctx, "chatmux-healthz", &groups.Message{Kind: groups.KindLeave, Group: "chatmux-healthz"})
}
