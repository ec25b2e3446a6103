package groups

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chatmux/chatmux/internal/testenv"
)

// probe publishes probes from one node until the member receives one, and
// returns how long that took. Publications made after it returned must all
// arrive; probes published before the one received were lost or arrived
// before it (one publisher's order).
func probe(t *testing.T, from *Redis, group string, m *recorder, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	tag := testenv.UniqueName("probe-")
	for i := 0; ; i++ {
		s := tag + "-" + strconv.Itoa(i)
		_ = from.Publish(context.Background(), group, dataMsg(s))
		if m.waitFor(50*time.Millisecond, s) {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("no probe reached the member within %v", within)
		}
	}
}

// sendAndExpect publishes n messages and checks that the member gets all
// of them, in order, after whatever it had.
func sendAndExpect(t *testing.T, from *Redis, group string, m *recorder, tag string, n int) {
	t.Helper()
	before := len(m.data())
	for i := range n {
		if err := from.Publish(context.Background(), group, dataMsg(tag+strconv.Itoa(i))); err != nil {
			t.Fatalf("publish %s%d: %v", tag, i, err)
		}
	}
	got := m.wait(t, before+n, generous)[before:]
	for i := range n {
		if want := tag + strconv.Itoa(i); got[i] != want {
			t.Fatalf("message %d = %q, want %q", i, got[i], want)
		}
	}
}

// After its pub/sub connection is killed (CLIENT KILL of that connection
// only: other tests share the Redis), a node resubscribes by itself and
// nothing published after it is back is lost.
func TestRedisResubscribesAfterKill(t *testing.T) {
	prefix := testenv.UniqueName("t") + ":"
	admin := adminClient(t)
	// A killed connection is noticed when its read fails; the health
	// check's timeout is long enough that a busy machine does not make a
	// healthy connection look silent (a replacement loses messages).
	opts := RedisOptions{Prefix: prefix, HealthCheckInterval: 100 * time.Millisecond, HealthCheckTimeout: 2 * time.Second}
	a := newRedisNode(t, prefix+"a", "", opts)
	b := newRedisNode(t, prefix+"b", "", opts)
	ctx := context.Background()
	ma, mb := newRecorder(), newRecorder()
	if err := a.broker.Join(ctx, "room", ma); err != nil {
		t.Fatal(err)
	}
	if err := b.broker.Join(ctx, "room", mb); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		if n := killPubSub(t, admin, b.name); n != 1 {
			t.Fatalf("killed %d pub/sub connections of node b, want 1", n)
		}
		d := probe(t, a.broker, "room", mb, generous)
		t.Logf("round %d: delivery resumed %v after the kill", round, d.Round(time.Millisecond))
		sendAndExpect(t, a.broker, "room", mb, "a"+strconv.Itoa(round)+"-", 50)
		sendAndExpect(t, b.broker, "room", ma, "b"+strconv.Itoa(round)+"-", 50)
	}
	res, err := admin.PubSubNumSub(ctx, prefix+"g:room").Result()
	if err != nil || res[prefix+"g:room"] != 2 {
		t.Fatalf("subscribers of room after reconnects = %v (%v), want 2", res, err)
	}
}

// A pub/sub connection that silently stops delivering is detected by the
// health check, reported (false, then true once replaced) and replaced.
func TestRedisHealthCheckReplacesSilentConnection(t *testing.T) {
	prefix := testenv.UniqueName("t") + ":"
	p := newProxy(t, testRedisOptions(t).Addr)
	// HealthCheckTimeout is long enough that a busy machine does not make
	// a healthy connection look silent: only the freeze does.
	opts := RedisOptions{Prefix: prefix, HealthCheckInterval: 50 * time.Millisecond, HealthCheckTimeout: 2 * time.Second}
	a := newRedisNode(t, prefix+"a", "", opts)
	b := newRedisNode(t, prefix+"b", p.addr(), opts)
	mb := newRecorder()
	if err := b.broker.Join(context.Background(), "room", mb); err != nil {
		t.Fatal(err)
	}
	l := newAvailabilityLog()
	b.broker.OnAvailability(l.callback(0, nil))
	sendAndExpect(t, a.broker, "room", mb, "before-", 10)
	frozen := time.Now()
	p.freeze() // b's connections stay open but carry nothing
	lost := l.wait(t, 0, 1, generous)
	back := l.wait(t, 0, 2, generous)
	t.Logf("silent for %v: false after %v, true after %v", opts.HealthCheckTimeout,
		lost.at.Sub(frozen).Round(time.Millisecond), back.at.Sub(frozen).Round(time.Millisecond))
	l.checkAlternates(t, 0, 2)
	// Published after true: it arrives (sendAndExpect checks every one).
	sendAndExpect(t, a.broker, "room", mb, "after-", 50)
}

// With Redis down, Publish fails fast and local members are still served;
// the node recovers by itself when Redis is back.
func TestRedisDownAndBack(t *testing.T) {
	prefix := testenv.UniqueName("t") + ":"
	p := newProxy(t, testRedisOptions(t).Addr)
	// PublishTimeout is the default: the publications made once Redis is
	// back must not time out on a busy machine.
	opts := RedisOptions{Prefix: prefix, HealthCheckInterval: 100 * time.Millisecond, HealthCheckTimeout: 2 * time.Second}
	a := newRedisNode(t, prefix+"a", "", opts)
	b := newRedisNode(t, prefix+"b", p.addr(), opts)
	ctx := context.Background()
	ma, mb := newRecorder(), newRecorder()
	if err := a.broker.Join(ctx, "room", ma); err != nil {
		t.Fatal(err)
	}
	if err := b.broker.Join(ctx, "room", mb); err != nil {
		t.Fatal(err)
	}
	p.setDown(true)

	// Publish is bounded by its own timeout: it returns ErrUnavailable
	// (not the error of a context that ended) well before a generous
	// deadline.
	bounded := boundedContext(t)
	err := b.broker.Publish(bounded, "room", dataMsg("during"))
	if !errors.Is(err, ErrUnavailable) || bounded.Err() != nil {
		t.Fatalf("Publish with Redis down = %v, want ErrUnavailable within %v", err, generous)
	}
	if !mb.waitFor(generous, "during") {
		t.Fatal("local member did not get the message published while Redis was down")
	}
	// A control message still moves local members; its wait is bounded.
	local := joiner(b.broker)
	if err := b.broker.Join(ctx, User(1), local); err != nil {
		t.Fatalf("Join while Redis is down: %v", err)
	}
	_ = b.broker.Publish(bounded, User(1), &Message{Kind: KindJoin, Group: "later"})
	if bounded.Err() != nil {
		t.Fatalf("control Publish with Redis down did not return within %v", generous)
	}
	if b.broker.Hub().Len("later") != 1 {
		t.Fatal("local member did not join while Redis was down")
	}

	p.setDown(false)
	d := probe(t, a.broker, "room", mb, generous)
	t.Logf("delivery to node b resumed %v after Redis came back", d.Round(time.Millisecond))
	sendAndExpect(t, a.broker, "room", mb, "a-", 50)
	sendAndExpect(t, b.broker, "room", ma, "b-", 50)
	// The group joined during the outage was subscribed on recovery.
	sendAndExpect(t, a.broker, "later", local, "later-", 5)
}

// Every wait is bounded: a Join whose subscription Redis does not confirm
// fails after JoinTimeout (and is undone), and a control message that a
// node never acknowledges returns after ControlTimeout.
func TestRedisWaitsAreBounded(t *testing.T) {
	prefix := testenv.UniqueName("t") + ":"
	p := newProxy(t, testRedisOptions(t).Addr)
	opts := RedisOptions{
		Prefix:              prefix,
		JoinTimeout:         200 * time.Millisecond,
		ControlTimeout:      300 * time.Millisecond,
		HealthCheckInterval: time.Hour, // the freeze goes unnoticed
	}
	a := newRedisNode(t, prefix+"a", "", opts)
	b := newRedisNode(t, prefix+"b", p.addr(), opts)
	device := joiner(b.broker)
	joinConfirmed(t, b.broker, User(5), device)
	p.freeze()

	// Each wait ends by its own timeout: not before it, and with its own
	// result rather than the error of the caller's (generous) context.
	bounded := boundedContext(t)
	start := time.Now()
	m := newRecorder()
	err := b.broker.Join(bounded, "unconfirmed", m)
	if !errors.Is(err, ErrUnavailable) || bounded.Err() != nil {
		t.Fatalf("Join without confirmation = %v, want ErrUnavailable after JoinTimeout", err)
	}
	if d := time.Since(start); d < opts.JoinTimeout {
		t.Fatalf("Join without confirmation returned after %v, before JoinTimeout %v", d, opts.JoinTimeout)
	}
	if n := b.broker.Hub().Len("unconfirmed"); n != 0 {
		t.Fatalf("failed Join left %d members", n)
	}

	start = time.Now()
	if err := a.broker.Publish(bounded, User(5), &Message{Kind: KindJoin, Group: "room"}); err != nil {
		t.Fatalf("unacknowledged control Publish: %v (want nil after ControlTimeout)", err)
	}
	if d := time.Since(start); d < opts.ControlTimeout {
		t.Fatalf("unacknowledged control Publish returned after %v, before ControlTimeout %v", d, opts.ControlTimeout)
	}
}

// Joins and leaves racing on the same groups leave the node subscribed
// exactly to the groups that still have local members.
func TestRedisJoinLeaveChurn(t *testing.T) {
	prefix := testenv.UniqueName("t") + ":"
	admin := adminClient(t)
	a := newRedisNode(t, prefix+"a", "", RedisOptions{Prefix: prefix})
	ctx := context.Background()
	const workers, rounds, groupsN = 8, 200, 4
	keep := make([]*recorder, groupsN)
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			m := newRecorder()
			for i := range rounds {
				g := "g" + strconv.Itoa((w+i)%groupsN)
				if err := a.broker.Join(ctx, g, m); err != nil {
					t.Error(err)
					return
				}
				_ = a.broker.Leave(ctx, g, m)
			}
		}()
	}
	for range workers {
		<-done
	}
	// Groups 0 and 1 keep one member each; 2 and 3 end empty.
	for i := range 2 {
		keep[i] = newRecorder()
		if err := a.broker.Join(ctx, "g"+strconv.Itoa(i), keep[i]); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(generous)
	for {
		got := channels(t, admin, prefix)
		slices.Sort(got)
		if slices.Equal(got, []string{"g0", "g1"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscribed to %v after the churn, want [g0 g1]", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
