package groups

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chatmux/chatmux/internal/testenv"
)

// confirmed reports whether the node's subscription to group's channel is
// confirmed by Redis.
func (r *Redis) confirmed(group string) bool {
	r.subs.mu.Lock()
	defer r.subs.mu.Unlock()
	st := r.subs.groups[group]
	return st != nil && st.want && st.confirmed
}

// joinedGroups are groups whose Join returned nil, each with its member.
type joinedGroups struct {
	mu      sync.Mutex
	names   []string
	members []*recorder
}

func (j *joinedGroups) add(name string, m *recorder) {
	j.mu.Lock()
	j.names = append(j.names, name)
	j.members = append(j.members, m)
	j.mu.Unlock()
}

func (j *joinedGroups) list() ([]string, []*recorder) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.names), slices.Clone(j.members)
}

// joinUntil joins a new group of b every millisecond until stop is closed,
// and records each one whose Join returned.
func joinUntil(t *testing.T, b *Redis, prefix string, into *joinedGroups, stop <-chan struct{}) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		g := prefix + strconv.Itoa(i)
		m := newRecorder()
		if err := b.Join(context.Background(), g, m); err != nil {
			t.Errorf("Join(%s): %v", g, err)
			return
		}
		into.add(g, m)
	}
}

// envInt and envDuration read a knob of a measurement from the environment.
func envInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func envDuration(tb testing.TB, name string) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		tb.Fatalf("%s=%q: %v", name, v, err)
	}
	return d
}

// median returns the median of ds (which it sorts) and the largest.
func median(ds []time.Duration) (med, largest time.Duration) {
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)-1]
}

// Redis is killed (SIGKILL) and restarted, again and again. Each time every
// node reports false, then true; a node reports true only once every
// channel it wants is confirmed, the groups joined while it was coming back
// included: a message that another node publishes right after true reaches
// every member, every time.
//
// CHATMUX_REDIS_RESTARTS (default 20) sets the number of restarts and
// CHATMUX_REDIS_DOWNTIME (default 0) how long Redis stays down each time
// after both nodes have reported false; the figures are logged (-v).
func TestRedisAvailabilityAcrossRestarts(t *testing.T) {
	srv := testenv.StartRedis(t)
	restarts := envInt(t, "CHATMUX_REDIS_RESTARTS", 20)
	downtime := envDuration(t, "CHATMUX_REDIS_DOWNTIME")
	// Node b talks to Redis over a link with latency, which widens the
	// window in which a node could report true before its subscriptions
	// are confirmed; node a's link is direct (its figures are the
	// node's own).
	p := newProxy(t, srv.Addr)
	p.delay = 5 * time.Millisecond
	opts := RedisOptions{Prefix: "t:"}
	a := newPrivateNode(t, "a", srv.Addr, opts)
	b := newPrivateNode(t, "b", p.addr(), opts)
	ctx := context.Background()
	mb := newRecorder()
	if err := b.broker.Join(ctx, "room", mb); err != nil {
		t.Fatal(err)
	}

	la, lb := newAvailabilityLog(), newAvailabilityLog()
	a.broker.OnAvailability(la.callback(0, nil))
	var joined joinedGroups // this round's groups, joined while b comes back
	var early []string      // groups not confirmed when b reported true
	var earlyMu sync.Mutex
	b.broker.OnAvailability(lb.callback(0, func(available bool) {
		if !available {
			return
		}
		names, _ := joined.list()
		for _, g := range append(names, "room") {
			if !b.broker.confirmed(g) {
				earlyMu.Lock()
				early = append(early, g)
				earlyMu.Unlock()
			}
		}
	}))
	b.broker.OnAvailability(lb.callback(1, nil)) // a second registration

	var killToFalse, restartToTrue, restartToTrueB []time.Duration
	joinedTotal := 0
	for round := range restarts {
		killed := time.Now()
		srv.Kill()
		fa := la.wait(t, 0, 2*round+1, generous)
		fb := lb.wait(t, 0, 2*round+1, generous)
		if fa.available || fb.available {
			t.Fatalf("round %d: true after the kill", round)
		}
		killToFalse = append(killToFalse, fa.at.Sub(killed), fb.at.Sub(killed))

		// While b is down a Join returns at once; the group is confirmed
		// before b reports true.
		down := "down-" + strconv.Itoa(round)
		md := newRecorder()
		if err := b.broker.Join(ctx, down, md); err != nil {
			t.Fatalf("Join while down: %v", err)
		}
		joined = joinedGroups{}
		stop, stopped := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(stopped)
			joinUntil(t, b.broker, "r"+strconv.Itoa(round)+"-", &joined, stop)
		}()
		if downtime > 0 {
			time.Sleep(downtime) // the outage lasts that long
		}
		started := srv.Start()
		trueA := la.wait(t, 0, 2*round+2, generous)
		trueB := lb.wait(t, 0, 2*round+2, generous)
		close(stop)
		<-stopped
		if !trueA.available || !trueB.available {
			t.Fatalf("round %d: false after the restart", round)
		}
		restartToTrue = append(restartToTrue, trueA.at.Sub(started))
		restartToTrueB = append(restartToTrueB, trueB.at.Sub(started))

		// Published right after true, from the other node: every one
		// arrives.
		tag := "after-" + strconv.Itoa(round)
		if err := a.broker.Publish(ctx, "room", dataMsg(tag)); err != nil {
			t.Fatalf("round %d: publish after true: %v", round, err)
		}
		if err := a.broker.Publish(ctx, down, dataMsg(tag)); err != nil {
			t.Fatalf("round %d: publish after true: %v", round, err)
		}
		names, members := joined.list()
		joinedTotal += len(names)
		for _, g := range names {
			if err := a.broker.Publish(ctx, g, dataMsg(tag)); err != nil {
				t.Fatalf("round %d: publish after true: %v", round, err)
			}
		}
		if !mb.waitFor(generous, tag) {
			t.Fatalf("round %d: the member of room missed a message published right after true", round)
		}
		if !md.waitFor(generous, tag) {
			t.Fatalf("round %d: the member of a group joined while down missed a message published right after true", round)
		}
		for i, m := range members {
			if !m.waitFor(generous, tag) {
				t.Fatalf("round %d: the member of %s, joined while b was coming back, missed a message published right after true", round, names[i])
			}
		}
		earlyMu.Lock()
		if len(early) > 0 {
			t.Fatalf("round %d: b reported true with %d groups unconfirmed: %v", round, len(early), early)
		}
		earlyMu.Unlock()
	}
	la.checkAlternates(t, 0, 2*restarts)
	lb.checkAlternates(t, 0, 2*restarts)
	lb.checkAlternates(t, 1, 2*restarts)
	kf, kfMax := median(killToFalse)
	rt, rtMax := median(restartToTrue)
	rtb, rtbMax := median(restartToTrueB)
	t.Logf("%d restarts (downtime %v), %d groups joined while coming back: kill to false median %v (max %v); restart to true median %v (max %v) direct, %v (max %v) over a 5 ms link",
		restarts, downtime, joinedTotal, kf.Round(time.Microsecond), kfMax.Round(time.Microsecond),
		rt.Round(time.Millisecond), rtMax.Round(time.Millisecond), rtb.Round(time.Millisecond), rtbMax.Round(time.Millisecond))
}

// A callback may call Join, Leave and Publish on its own broker: on false
// they return at once (Publish with ErrUnavailable, having served the local
// members), on true Join waits for its confirmation, and nothing deadlocks.
func TestRedisAvailabilityCallbackUsesBroker(t *testing.T) {
	srv := testenv.StartRedis(t)
	opts := RedisOptions{Prefix: "t:"}
	a := newPrivateNode(t, "a", srv.Addr, opts)
	b := newPrivateNode(t, "b", srv.Addr, opts)
	ctx := context.Background()
	local := newRecorder()
	if err := b.broker.Join(ctx, "room", local); err != nil {
		t.Fatal(err)
	}
	type result struct {
		available bool
		group     string
		member    *recorder
		err       error
	}
	results := make(chan result, 16)
	n := 0
	l := newAvailabilityLog()
	b.broker.OnAvailability(l.callback(0, func(available bool) {
		n++
		g := fmt.Sprintf("cb-%v-%d", available, n)
		m := newRecorder()
		err := b.broker.Join(ctx, g, m)
		if err == nil {
			err = b.broker.Leave(ctx, "nothing", m)
		}
		if err == nil {
			err = b.broker.Publish(ctx, "room", dataMsg(g))
			if !available && errors.Is(err, ErrUnavailable) {
				err = nil // expected while down
			}
		}
		results <- result{available: available, group: g, member: m, err: err}
	}))
	next := func() result {
		t.Helper()
		select {
		case r := <-results:
			return r
		case <-time.After(generous):
			t.Fatalf("no callback within %v", generous)
			return result{}
		}
	}
	// Node a publishes once it is back too: it reconnects on its own
	// schedule, which may be after b's.
	la := newAvailabilityLog()
	a.broker.OnAvailability(la.callback(0, nil))
	const restarts = 3
	for round := range restarts {
		srv.Kill()
		r := next()
		if r.available || r.err != nil {
			t.Fatalf("round %d: callback(false): %+v", round, r)
		}
		if !local.waitFor(time.Second, r.group) {
			t.Fatalf("round %d: Publish in callback(false) did not serve the local member", round)
		}
		srv.Start()
		r = next()
		if !r.available || r.err != nil {
			t.Fatalf("round %d: callback(true): %+v", round, r)
		}
		la.wait(t, 0, 2*round+2, generous)
		// The group joined in the callback is subscribed: a message from
		// the other node reaches it.
		if err := a.broker.Publish(ctx, r.group, dataMsg("to "+r.group)); err != nil {
			t.Fatal(err)
		}
		if !r.member.waitFor(generous, "to "+r.group) {
			t.Fatalf("round %d: the group joined in callback(true) missed a message", round)
		}
	}
	l.checkAlternates(t, 0, 2*restarts)
}

// A node that starts while Redis is down (ConnectInBackground) reports
// false when its first attempt fails, and true once it is connected with
// its subscriptions confirmed.
func TestRedisAvailabilityStartsDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	srv.Kill()
	opts := RedisOptions{Prefix: "t:", ConnectInBackground: true}
	b := newPrivateNode(t, "b", srv.Addr, opts)
	l := newAvailabilityLog()
	b.broker.OnAvailability(l.callback(0, nil))
	if c := l.wait(t, 0, 1, generous); c.available {
		t.Fatal("first call true with Redis down")
	}
	ctx := context.Background()
	m := newRecorder()
	if err := b.broker.Join(ctx, "room", m); err != nil {
		t.Fatalf("Join while down: %v", err)
	}
	if err := b.broker.Publish(ctx, "room", dataMsg("local")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Publish while down = %v, want ErrUnavailable", err)
	}
	if !m.waitFor(time.Second, "local") {
		t.Fatal("the local member was not served while down")
	}
	srv.Start()
	if c := l.wait(t, 0, 2, generous); !c.available {
		t.Fatal("second call false after Redis started")
	}
	a := newPrivateNode(t, "a", srv.Addr, RedisOptions{Prefix: "t:"})
	if err := a.broker.Publish(ctx, "room", dataMsg("remote")); err != nil {
		t.Fatal(err)
	}
	if !m.waitFor(generous, "remote") {
		t.Fatal("the group joined while down missed a message published after true")
	}
	l.checkAlternates(t, 0, 2)
	if !b.broker.Up() {
		t.Fatal("Up() = false after true")
	}
}

// Publish fails fast while the node knows it is down: ErrUnavailable at
// once, or after DownPublishTimeout, never PublishTimeout; the local
// members are served. Failing without trying Redis also keeps the client's
// pool from giving up on dialing (go-redis stops dialing for up to a second
// after PoolSize failed dials): the first Publish after true goes through.
func TestRedisPublishFailsFastWhileDown(t *testing.T) {
	srv := testenv.StartRedis(t)
	// PublishTimeout is longer than the generous deadline of the
	// publications below: one that waited for it would outlive that
	// deadline.
	opts := RedisOptions{Prefix: "t:", PublishTimeout: 2 * generous}
	a := newPrivateNode(t, "a", srv.Addr, opts)
	b := newPrivateNode(t, "b", srv.Addr, opts)
	ctx := context.Background()
	m, remote := newRecorder(), newRecorder()
	if err := b.broker.Join(ctx, "room", m); err != nil {
		t.Fatal(err)
	}
	if err := a.broker.Join(ctx, "room", remote); err != nil {
		t.Fatal(err)
	}
	l, la := newAvailabilityLog(), newAvailabilityLog()
	b.broker.OnAvailability(l.callback(0, nil))
	a.broker.OnAvailability(la.callback(0, nil))
	srv.Kill()
	l.wait(t, 0, 1, generous)
	var took []time.Duration
	const n = 50
	for i := range n {
		s := "down-" + strconv.Itoa(i)
		bounded := boundedContext(t)
		start := time.Now()
		err := b.broker.Publish(bounded, "room", dataMsg(s))
		d := time.Since(start)
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Publish while down = %v, want ErrUnavailable", err)
		}
		// Not bounded by PublishTimeout: it returned before the
		// generous deadline, half of it.
		if bounded.Err() != nil {
			t.Fatalf("Publish while down did not return within %v (PublishTimeout %v)", generous, opts.PublishTimeout)
		}
		took = append(took, d)
		if !m.waitFor(time.Second, s) {
			t.Fatal("the local member was not served")
		}
	}
	med, slowest := median(took)
	t.Logf("%d publishes while down: ErrUnavailable after %v (median), %v (max)", n, med.Round(time.Microsecond), slowest.Round(time.Microsecond))
	// A control message too: it still moves the local members.
	device := joiner(b.broker)
	if err := b.broker.Join(ctx, User(1), device); err != nil {
		t.Fatal(err)
	}
	if err := b.broker.Publish(ctx, User(1), &Message{Kind: KindJoin, Group: "later"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("control Publish while down = %v, want ErrUnavailable", err)
	}
	if b.broker.Hub().Len("later") != 1 {
		t.Fatal("the local member did not join while down")
	}

	srv.Start()
	l.wait(t, 0, 2, generous)
	// The other node's member hears it only once that node has
	// resubscribed: it reconnects on its own schedule, which may be after
	// b's.
	la.wait(t, 0, 2, generous)
	if err := b.broker.Publish(ctx, "room", dataMsg("back")); err != nil {
		t.Fatalf("first Publish after true: %v", err)
	}
	if !remote.waitFor(generous, "back") {
		t.Fatal("the first message published after true did not reach the other node")
	}
}

// When only the node's pub/sub connection is lost (Redis itself answers),
// the node reports false, and what it publishes meanwhile still reaches
// the other nodes: Publish fails fast only when Redis does not answer.
func TestRedisPublishWhilePubSubLost(t *testing.T) {
	prefix := testenv.UniqueName("t") + ":"
	admin := adminClient(t)
	opts := RedisOptions{Prefix: prefix}
	a := newRedisNode(t, prefix+"a", "", opts)
	b := newRedisNode(t, prefix+"b", "", opts)
	ctx := context.Background()
	ma := newRecorder()
	if err := a.broker.Join(ctx, "room", ma); err != nil {
		t.Fatal(err)
	}
	l := newAvailabilityLog()
	b.broker.OnAvailability(l.callback(0, nil))
	for round := range 3 {
		if n := killPubSub(t, admin, b.name); n != 1 {
			t.Fatalf("killed %d pub/sub connections of node b, want 1", n)
		}
		l.wait(t, 0, 2*round+1, generous)
		s := "while-lost-" + strconv.Itoa(round)
		wasDown := !b.broker.Up()
		if err := b.broker.Publish(ctx, "room", dataMsg(s)); err != nil {
			t.Fatalf("Publish with only the pub/sub connection lost: %v", err)
		}
		if !wasDown {
			t.Logf("round %d: b was back before it published", round)
		}
		if !ma.waitFor(generous, s) {
			t.Fatalf("round %d: a message published while b's pub/sub connection was lost did not reach node a", round)
		}
		l.wait(t, 0, 2*round+2, generous)
	}
	l.checkAlternates(t, 0, 6)
}

// A connection lost while the node is coming back (before it reported
// true) is no new call: the node stays unavailable and reports true once
// it is really back. A callback registered while the node is down hears
// false first.
func TestRedisAvailabilityLossWhileRecovering(t *testing.T) {
	prefix := testenv.UniqueName("t") + ":"
	p := newProxy(t, testRedisOptions(t).Addr)
	opts := RedisOptions{Prefix: prefix}
	a := newRedisNode(t, prefix+"a", "", opts)
	b := newRedisNode(t, prefix+"b", p.addr(), opts)
	ctx := context.Background()
	mb := newRecorder()
	if err := b.broker.Join(ctx, "room", mb); err != nil {
		t.Fatal(err)
	}
	l := newAvailabilityLog()
	b.broker.OnAvailability(l.callback(0, nil))

	// Cut b off; its next connection is accepted but held: it is coming
	// back, not back.
	p.setHold(true)
	accepted := p.accepted.Load()
	p.setDown(true)
	p.setDown(false)
	l.wait(t, 0, 1, generous)
	deadline := time.Now().Add(generous)
	for p.accepted.Load() == accepted {
		if time.Now().After(deadline) {
			t.Fatalf("b did not try to reconnect within %v", generous)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	b.broker.OnAvailability(l.callback(1, nil)) // registered while down
	l.wait(t, 1, 1, generous)
	p.setDown(true) // the connection is lost while b comes back
	if b.broker.Up() {
		t.Fatal("b up while held")
	}
	p.setHold(false)
	p.setDown(false)
	l.wait(t, 0, 2, generous)
	l.wait(t, 1, 2, generous)
	l.checkAlternates(t, 0, 2)
	l.checkAlternates(t, 1, 2)
	sendAndExpect(t, a.broker, "room", mb, "after-", 10)
}
