package groups

import (
	"bytes"
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

func TestRedisWireRoundTrip(t *testing.T) {
	r := &Redis{id: 0xdeadbeef01020304}
	tests := []struct {
		name string
		m    *Message
		ack  bool
	}{
		{"data", &Message{Kind: KindData, Data: []byte(`{"eventType":"x","data":1}`)}, false},
		{"empty data", &Message{Kind: KindData}, false},
		{"join", &Message{Kind: KindJoin, Group: "group-42"}, true},
		{"leave", &Message{Kind: KindLeave, Group: "group-é"}, true},
		{"data with group", &Message{Kind: KindData, Group: "g", Data: []byte{0, 1, 2}}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq := uint64(1) << (7 * i)
			p := r.encode(tt.m, seq, tt.ack)
			in, err := decode(p)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if in.origin != r.id || in.seq != seq || in.ack != tt.ack {
				t.Fatalf("header = %x/%d/%v, want %x/%d/%v", in.origin, in.seq, in.ack, r.id, seq, tt.ack)
			}
			if in.msg.Kind != tt.m.Kind || in.msg.Group != tt.m.Group || !bytes.Equal(in.msg.Data, tt.m.Data) {
				t.Fatalf("message = %+v, want %+v", in.msg, tt.m)
			}
			if len(p) > len(tt.m.Data)+len(tt.m.Group)+1+8+5+2 {
				t.Fatalf("header of %d bytes, want compact", len(p)-len(tt.m.Data))
			}
		})
	}
	for _, bad := range [][]byte{nil, {0}, []byte("12345678"), append([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 1}, 200)} {
		if _, err := decode(bad); err == nil {
			t.Errorf("decode(%v) succeeded", bad)
		}
	}
}

func FuzzRedisDecode(f *testing.F) {
	r := &Redis{id: 7}
	f.Add(r.encode(&Message{Kind: KindJoin, Group: "group-1"}, 3, true))
	f.Add(r.encode(&Message{Kind: KindData, Data: []byte("hello")}, 300, false))
	f.Fuzz(func(t *testing.T, p []byte) {
		in, err := decode(p)
		if err != nil {
			return
		}
		again, err := decode(r.encodeFrom(in))
		if err != nil || again.msg.Group != in.msg.Group || !bytes.Equal(again.msg.Data, in.msg.Data) || again.seq != in.seq {
			t.Fatalf("round trip of %v: %+v != %+v (%v)", p, again, in, err)
		}
	})
}

// encodeFrom re-encodes a decoded message (for the fuzzer).
func (r *Redis) encodeFrom(in inbound) []byte {
	rr := &Redis{id: in.origin}
	m := *in.msg
	m.Kind &= 0x0f
	return rr.encode(&m, in.seq, in.ack)
}

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
	start := time.Now()
	_, err := NewRedisURL("redis://"+p.addr()+"/0", RedisOptions{PublishTimeout: 300 * time.Millisecond, Logger: quietLogger})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("NewRedisURL with Redis down = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("NewRedisURL took %v with Redis down", d)
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
	for i, ms := range members {
		for k, m := range ms {
			got := m.wait(t, nodes*perNode, 10*time.Second)
			time.Sleep(20 * time.Millisecond)
			if got = m.data(); len(got) != nodes*perNode {
				t.Fatalf("node %d member %d: %d messages, want %d (duplicates?)", i, k, len(got), nodes*perNode)
			}
			next := make([]int, nodes)
			for _, s := range got {
				from, j, _ := strings.Cut(s, ":")
				f, _ := strconv.Atoi(from)
				jj, _ := strconv.Atoi(j)
				if jj != next[f] {
					t.Fatalf("node %d member %d: got %s, want %d:%d", i, k, s, f, next[f])
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
	a := newRedisNode(t, prefix+"a", "", RedisOptions{Prefix: prefix})
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
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	_ = a.broker.Leave(ctx, "room", m1)
	time.Sleep(50 * time.Millisecond)
	if n := numsub(); n != 2 {
		t.Fatalf("subscribers of room after one of two local members left = %d, want 2", n)
	}
	_ = a.broker.Leave(ctx, "room", m2)
	eventually("node a to unsubscribe", func() bool { return numsub() == 1 })
	_ = a.broker.Leave(ctx, "room", m2) // leaving twice does nothing
	_ = b.broker.Leave(ctx, "room", m3)
	eventually("node b to unsubscribe", func() bool { return numsub() == 0 })

	// Many joins at once are coalesced into few SUBSCRIBE commands.
	before := a.broker.subscribeCommands.Load()
	const many = 2000
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
	if got := len(channels(t, admin, prefix)); got != many {
		t.Fatalf("PUBSUB CHANNELS: %d group channels, want %d", got, many)
	}
	cmds := a.broker.subscribeCommands.Load() - before
	t.Logf("%d joins made %d SUBSCRIBE commands", many, cmds)
	if cmds > many/4 {
		t.Fatalf("%d joins made %d SUBSCRIBE commands, want them batched", many, cmds)
	}
	for i := range many {
		_ = a.broker.Leave(ctx, "g"+strconv.Itoa(i), ms[i])
	}
	eventually("every channel to be unsubscribed", func() bool { return len(channels(t, admin, prefix)) == 0 })
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
	for i := range 3 {
		n := newRedisNode(t, prefix+"n"+strconv.Itoa(i), "", RedisOptions{Prefix: prefix})
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
		start := time.Now()
		if err := ns[0].broker.Publish(ctx, User(7), &Message{Kind: KindJoin, Group: room}); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("control publish took %v", d)
		}
		// Published at once, from the node that moved the user.
		if err := ns[0].broker.Publish(ctx, room, dataMsg("welcome "+room)); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range devices {
		got := d.wait(t, rounds, 5*time.Second)
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
		got := d.wait(t, rounds+1, 5*time.Second)
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
