package chat

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/chatmux/chatmux/store"
)

// Defaults of NodeKeeperOptions.
const (
	DefaultNodeInterval = 5 * time.Second
	DefaultNodeExpiry   = 15 * time.Second
)

// NodeKeeperOptions configures a NodeKeeper. The zero value means the
// defaults.
type NodeKeeperOptions struct {
	// Interval is the time between two heartbeats of this node, and
	// between two sweeps for dead nodes (default 5 s). Each store call of
	// the keeper is bounded by it.
	Interval time.Duration
	// Expiry is how long a node may go without a heartbeat before it is
	// taken for dead and its sessions are deleted (default 15 s; at least
	// twice Interval, raised to that when smaller).
	Expiry time.Duration
	// Logger receives the failures of heartbeats and sweeps (default
	// slog.Default()).
	Logger *slog.Logger
}

// NodeKeeper keeps this node's heartbeat in the store and expires the
// sessions of the nodes that stopped beating: a node that crashed (a
// SIGKILL, a lost machine) never closes its sessions, so any node that is
// still running deletes them. Every node that shares a store runs one,
// with the node id its Service gives its sessions (Service.NodeID); a node
// without a keeper has its sessions expired by the others.
//
// The bound: the sessions of a node that died are deleted at most
// Expiry + Interval after its last heartbeat (20 s with the defaults),
// as soon as any other node runs a keeper.
//
//	keeper := chat.NewNodeKeeper(st, svc.NodeID(), chat.NodeKeeperOptions{})
//	go keeper.Run(ctx)          // until ctx ends
//	...
//	srv.Shutdown(sctx)          // closes the sessions of the connections
//	keeper.Leave(sctx)          // then removes this node and anything left
type NodeKeeper struct {
	st   store.NodeStore
	id   string
	opts NodeKeeperOptions
}

// NewNodeKeeper returns a keeper of node nodeID in st.
func NewNodeKeeper(st store.NodeStore, nodeID string, opts NodeKeeperOptions) *NodeKeeper {
	if opts.Interval <= 0 {
		opts.Interval = DefaultNodeInterval
	}
	if opts.Expiry <= 0 {
		opts.Expiry = DefaultNodeExpiry
	}
	opts.Expiry = max(opts.Expiry, 2*opts.Interval)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &NodeKeeper{st: st, id: nodeID, opts: opts}
}

// Options returns the keeper's options, defaults applied.
func (k *NodeKeeper) Options() NodeKeeperOptions { return k.opts }

// Run writes the node's heartbeat and sweeps for dead nodes at once, then
// every Interval, until ctx ends. Failures are logged and retried at the
// next tick.
func (k *NodeKeeper) Run(ctx context.Context) {
	t := time.NewTicker(k.opts.Interval)
	defer t.Stop()
	for {
		if _, err := k.Beat(ctx); err != nil && ctx.Err() == nil {
			k.opts.Logger.WarnContext(ctx, "chat: node heartbeat failed", "node", k.id, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Beat writes the node's heartbeat, then deletes the sessions of the nodes
// not seen for longer than Expiry; it returns how many it deleted. It is
// one step of Run.
func (k *NodeKeeper) Beat(ctx context.Context) (int, error) {
	if _, err := bounded(ctx, k.opts.Interval, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, k.st.TouchNode(ctx, k.id)
	}); err != nil {
		return 0, fmt.Errorf("failed to write the heartbeat of node %s: %w", k.id, err)
	}
	n, err := bounded(ctx, k.opts.Interval, func(ctx context.Context) (int, error) {
		return k.st.ExpireNodes(ctx, k.opts.Expiry)
	})
	if err != nil {
		return 0, fmt.Errorf("failed to expire dead nodes: %w", err)
	}
	if n > 0 {
		k.opts.Logger.InfoContext(ctx, "chat: expired the sessions of dead nodes", "node", k.id, "sessions", n)
	}
	return n, nil
}

// Leave removes this node from the store with the sessions it still has:
// call it when the node stops, after the server's Shutdown has closed the
// sessions of its connections, so that none stays open. It returns how many
// sessions it deleted.
func (k *NodeKeeper) Leave(ctx context.Context) (int, error) {
	n, err := bounded(ctx, k.opts.Interval, func(ctx context.Context) (int, error) {
		return k.st.RemoveNode(ctx, k.id)
	})
	if err != nil {
		return 0, fmt.Errorf("failed to remove node %s: %w", k.id, err)
	}
	return n, nil
}
