package groups

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatmux/chatmux/internal/testenv"
)

func TestNewRedisURL(t *testing.T) {
	if _, err := NewRedisURL("http://nope", RedisOptions{}); err == nil {
		t.Fatal("NewRedisURL accepted a non-redis URL")
	}
	b, err := NewRedisURL(testenv.RedisURL(t), RedisOptions{Prefix: testenv.UniqueName("t") + ":", Logger: quietLogger})
	if err != nil {
		t.Fatalf("NewRedisURL: %v", err)
	}
	m := newRecorder()
	if err := b.Join(context.Background(), "g", m); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), "g", dataMsg("x")); err != nil {
		t.Fatal(err)
	}
	m.wait(t, 1, 5*time.Second)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Publish(context.Background(), "g", dataMsg("y")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
	if err := b.Join(context.Background(), "g", m); !errors.Is(err, ErrClosed) {
		t.Fatalf("Join after Close = %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNewRedisUnreachable(t *testing.T) {
	_ = testenv.RedisURL(t)
	p := newProxy(t, "127.0.0.1:1")
	p.setDown(true)
	o := testRedisOptions(t)
	o.Addr = p.addr()
	// NewRedisURL takes no context: it is bounded by PublishTimeout. Its
	// bound is told from a hang by a generous wait, not timed.
	done := make(chan error, 1)
	go func() {
		_, err := NewRedisURL("redis://"+p.addr()+"/0", RedisOptions{PublishTimeout: 300 * time.Millisecond, Logger: quietLogger})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("NewRedisURL with Redis down = %v, want ErrUnavailable", err)
		}
	case <-time.After(generous):
		t.Fatalf("NewRedisURL with Redis down did not return within %v (PublishTimeout 300ms)", generous)
	}
}

// Members on three nodes receive every node's publications, each node's in
// its publish order, and local members exactly once.
func TestRedisOrderAcrossNodes(t *testing.T) {
	prefix := testenv.UniqueName("t") + ":"
	const nodes, perNode, membersPerNode = 3, 300, 3
	var ns []*redisNode
	var members [][]*recorder
	for i := range nodes {
		n := newRedisNode(t, prefix+"n"+strconv.Itoa(i), "", RedisOptions{Prefix: prefix})
		ns = append(ns, n)
		var ms []*recorder
		for range membersPerNode {
			m := newRecorder()
			if err := n.broker.Join(context.Background(), "room", m); err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
		members = append(members, ms)
	}
	var wg sync.WaitGroup
	for i, n := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perNode {
				if err := n.broker.Publish(context.Background(), "room", dataMsg(fmt.Sprintf("%d:%d", i, j))); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Then each node publishes a last message, numbered perNode. A node
	// reads the other nodes' last messages after the echoes of its own
	// publications (Redis executed those first): had it delivered an echo,
	// the duplicate would be among the messages counted below.
	for i, n := range ns {
		if err := n.broker.Publish(context.Background(), "room", dataMsg(fmt.Sprintf("%d:%d", i, perNode))); err != nil {
			t.Fatal(err)
		}
	}
	const total = nodes * (perNode + 1)
	for i, ms := range members {
		for k, m := range ms {
			got := m.wait(t, total, 10*time.Second)
			next := make([]int, nodes)
			for _, s := range got {
				from, j, _ := strings.Cut(s, ":")
				f, _ := strconv.Atoi(from)
				jj, _ := strconv.Atoi(j)
				if jj != next[f] {
					t.Fatalf("node %d member %d: got %s, want %d:%d (out of order or duplicate)", i, k, s, f, next[f])
				}
				next[f]++
			}
		}
	}
}

// A node subscribes to a group's channel while it has local members, with
// batched SUBSCRIBE commands, and unsubscribes after the last one leaves.
func TestRedisReferenceCountedSubscriptions(t *testing.T) {
	prefix := testenv.UniqueName("t") + ":"
	admin := adminClient(t)
	// Node a talks to Redis through a proxy that counts its SUBSCRIBE
	// commands.
	p := newProxy(t, testRedisOptions(t).Addr)
	a := newRedisNode(t, prefix+"a", p.addr(), RedisOptions{Prefix: prefix})
	b := newRedisNode(t, prefix+"b", "", RedisOptions{Prefix: prefix})
	ctx := context.Background()
	m1, m2, m3 := newRecorder(), newRecorder(), newRecorder()
	for _, m := range []*recorder{m1, m2} {
		if err := a.broker.Join(ctx, "room", m); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.broker.Join(ctx, "room", m3); err != nil {
		t.Fatal(err)
	}
	numsub := func() int64 {
		res, err := admin.PubSubNumSub(ctx, prefix+"g:room").Result()
		if err != nil {
			t.Fatal(err)
		}
		return res[prefix+"g:room"]
	}
	if n := numsub(); n != 2 {
		t.Fatalf("subscribers of room = %d, want 2 (one per node, not per member)", n)
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(generous)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	_ = a.broker.Leave(ctx, "room", m1)
	// Had that leave made node a unsubscribe, the UNSUBSCRIBE would go out
	// before, or with, the SUBSCRIBE of another join, and Redis would have
	// executed it when that join is confirmed.
	barrier := newRecorder()
	if err := a.broker.Join(ctx, "barrier", barrier); err != nil {
		t.Fatal(err)
	}
	if n := numsub(); n != 2 {
		t.Fatalf("subscribers of room after one of two local members left = %d, want 2", n)
	}
	_ = a.broker.Leave(ctx, "barrier", barrier)
	_ = a.broker.Leave(ctx, "room", m2)
	eventually("node a to unsubscribe", func() bool { return numsub() == 1 })
	_ = a.broker.Leave(ctx, "room", m2) // leaving twice does nothing
	_ = b.broker.Leave(ctx, "room", m3)
	eventually("node b to unsubscribe", func() bool { return numsub() == 0 })

	// Many concurrent joins are each confirmed.
	const many = 2000
	joinAll := func() []*recorder {
		ms := make([]*recorder, many)
		var wg sync.WaitGroup
		for i := range many {
			ms[i] = newRecorder()
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := a.broker.Join(ctx, "g"+strconv.Itoa(i), ms[i]); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		return ms
	}
	leaveAll := func(ms []*recorder) {
		for i, m := range ms {
			_ = a.broker.Leave(ctx, "g"+strconv.Itoa(i), m)
		}
		eventually("every channel to be unsubscribed", func() bool { return len(channels(t, admin, prefix)) == 0 })
	}
	ms := joinAll()
	if got := len(channels(t, admin, prefix)); got != many {
		t.Fatalf("PUBSUB CHANNELS: %d group channels, want %d", got, many)
	}
	leaveAll(ms)

	// Joins made while Redis is away return at once; the new pub/sub
	// connection subscribes to all of them in as few SUBSCRIBE commands as
	// the chunk size allows, after the one of the node's own channel.
	p.setDown(true)
	eventually("node a to lose its pub/sub connection", func() bool { return !a.broker.Up() })
	before := p.subscribes.Load()
	ms = joinAll()
	p.setDown(false)
	eventually("node a to be back", a.broker.Up)
	if got := len(channels(t, admin, prefix)); got != many {
		t.Fatalf("PUBSUB CHANNELS after the outage: %d group channels, want %d", got, many)
	}
	want := 1 + int64((many+subscribeChunk-1)/subscribeChunk)
	if cmds := p.subscribes.Load() - before; cmds != want {
		t.Fatalf("%d joins during an outage made %d SUBSCRIBE commands on recovery, want %d", many, cmds, want)
	}
	leaveAll(ms)
}

// joiner is a member that applies control messages in Deliver, as chatmux
// connections do.
func joiner(b Broker) *recorder {
	m := newRecorder()
	m.onControl = func(c *Message) {
		switch c.Kind {
		case KindJoin:
			_ = b.Join(context.Background(), c.Group, m)
		case KindLeave:
			_ = b.Leave(context.Background(), c.Group, m)
		}
	}
	return m
}

// A control message published to a user's group moves that user's members
// on every node; when Publish returns they are subscribed, so a message
// published right after reaches them (the join race).
func TestRedisControlMessagesAcrossNodes(t *testing.T) {
	prefix := testenv.UniqueName("t") + ":"
	ctx := context.Background()
	var ns []*redisNode
	var devices []*recorder
	// ControlTimeout is generous: a busy machine may delay the
	// acknowledgements, which this test expects every time.
	warnings := &logLines{}
	opts := RedisOptions{Prefix: prefix, ControlTimeout: 30 * time.Second, Logger: warnings.logger()}
	for i := range 3 {
		n := newRedisNode(t, prefix+"n"+strconv.Itoa(i), "", opts)
		ns = append(ns, n)
		if i == 0 {
			continue // node 0 has no device of the user: it only publishes
		}
		d := joiner(n.broker)
		if err := n.broker.Join(ctx, User(7), d); err != nil {
			t.Fatal(err)
		}
		devices = append(devices, d)
	}
	const rounds = 30
	for r := range rounds {
		room := Room(strconv.Itoa(r))
		if err := ns[0].broker.Publish(ctx, User(7), &Message{Kind: KindJoin, Group: room}); err != nil {
			t.Fatal(err)
		}
		// Publish returned because both nodes acknowledged, not because
		// ControlTimeout ran out (which is logged).
		if w := warnings.matching("did not confirm"); len(w) > 0 {
			t.Fatalf("round %d: control publish returned without every acknowledgement: %q", r, w)
		}
		// Published at once, from the node that moved the user.
		if err := ns[0].broker.Publish(ctx, room, dataMsg("welcome "+room)); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range devices {
		got := d.wait(t, rounds, generous)
		for r := range rounds {
			if want := "welcome " + Room(strconv.Itoa(r)); got[r] != want {
				t.Fatalf("device %d message %d = %q, want %q", i, r, got[r], want)
			}
		}
	}
	// A leave applies everywhere before Publish returns.
	if err := ns[0].broker.Publish(ctx, User(7), &Message{Kind: KindLeave, Group: Room("0")}); err != nil {
		t.Fatal(err)
	}
	if err := ns[0].broker.Publish(ctx, Room("0"), dataMsg("after leave")); err != nil {
		t.Fatal(err)
	}
	if err := ns[0].broker.Publish(ctx, User(7), dataMsg("marker")); err != nil {
		t.Fatal(err)
	}
	for i, d := range devices {
		got := d.wait(t, rounds+1, generous)
		if slices.Contains(got, "after leave") || got[len(got)-1] != "marker" {
			t.Fatalf("device %d after leave: %q", i, got[rounds:])
		}
	}
	// The control publish waited for the two nodes that had devices.
	for i, n := range ns[1:] {
		if n.broker.Hub().Len(Room("0")) != 0 || n.broker.Hub().Len(Room("1")) != 1 {
			t.Fatalf("node %d: members of room 0 = %d, room 1 = %d", i+1, n.broker.Hub().Len(Room("0")), n.broker.Hub().Len(Room("1")))
		}
	}
}

// Join returns when the subscription is confirmed: a message that another
// node publishes right after reaches the new member.
func TestRedisJoinWaitsForSubscription(t *testing.T) {
	prefix := testenv.UniqueName("t") + ":"
	ctx := context.Background()
	a := newRedisNode(t, prefix+"a", "", RedisOptions{Prefix: prefix})
	b := newRedisNode(t, prefix+"b", "", RedisOptions{Prefix: prefix})
	for i := range 100 {
		g := "g" + strconv.Itoa(i)
		m := newRecorder()
		if err := b.broker.Join(ctx, g, m); err != nil {
			t.Fatal(err)
		}
		if err := a.broker.Publish(ctx, g, dataMsg(g)); err != nil {
			t.Fatal(err)
		}
		m.wait(t, 1, 5*time.Second)
	}
	// A Join bounded by an ended context fails and is undone.
	done, cancel := context.WithCancel(ctx)
	cancel()
	m := newRecorder()
	if err := b.broker.Join(done, "late", m); !errors.Is(err, context.Canceled) {
		t.Fatalf("Join with a cancelled context = %v, want context.Canceled", err)
	}
	if n := b.broker.Hub().Len("late"); n != 0 {
		t.Fatalf("failed Join left %d members", n)
	}
}
