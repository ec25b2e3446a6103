package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/chatmux/chatmux"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"
)

// room is one benchmark room: its id (the chat room's uuid, or the group
// name of the bare server) and its members, member 0 the creator.
type room struct {
	index   int
	name    string
	id      string
	members []*benchConn
	senders []*benchConn
	// churners are members whose connections come and go (churn); their
	// first connections take part in the setup.
	churners []*benchConn
}

// world is the set of rooms and connections a scenario runs on.
type world struct {
	o     *options
	t     *target
	d     *dialer
	run   string
	rooms []*room
	all   []*benchConn
	// churnConns are the churners' first connections.
	churnConns []*benchConn
	// notificationsMissing counts connections that got no
	// chat.notifications frame on connect.
	notificationsMissing atomic.Int64
}

// setupParallel bounds concurrent setup requests.
const setupParallel = 64

// connect opens one connection for user name and, on the chat server,
// waits for its chat.notifications frame.
func (w *world) connect(ctx context.Context, name string) (*benchConn, error) {
	ws, err := w.d.dial(ctx, url.Values{"user": {name}})
	if err != nil {
		return nil, err
	}
	c := newBenchConn(ws, name)
	c.start()
	if !w.t.bare && !w.o.serve.NoNotifications {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.waitEvent(wctx, "chat.notifications", nil)
		cancel()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, errClosed) {
				c.close(true)
				return nil, err
			}
			w.notificationsMissing.Add(1)
		}
	}
	return c, nil
}

// buildRooms connects R x M members and makes them rooms.
func buildRooms(ctx context.Context, o *options, t *target) (*world, error) {
	w := &world{o: o, t: t, d: newDialer(t.url, o.sources), run: newRunID()}
	if o.batch {
		w.d.subprotocols = []string{chatmux.SubprotocolBatch}
	}
	ctx, cancel := context.WithTimeout(ctx, o.setupTimeout)
	defer cancel()

	total := o.rooms * o.members
	bar := newBar(o, int64(total), "connecting")
	w.rooms = make([]*room, o.rooms)
	for r := range w.rooms {
		w.rooms[r] = &room{index: r, name: fmt.Sprintf("cb%s-room%d", w.run, r), members: make([]*benchConn, o.members)}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(setupParallel)
	for r := 0; r < o.rooms; r++ {
		for m := 0; m < o.members; m++ {
			g.Go(func() error {
				c, err := w.connect(gctx, fmt.Sprintf("cb%s_r%d_m%d", w.run, r, m))
				if err != nil {
					return err
				}
				c.room = r
				mu.Lock()
				w.rooms[r].members[m] = c
				w.all = append(w.all, c)
				mu.Unlock()
				_ = bar.Add(1)
				return nil
			})
		}
	}
	// Churner i belongs to room i%R, at index i/R. Every slice has its
	// final length before any goroutine writes into it.
	for r := range w.rooms {
		w.rooms[r].churners = make([]*benchConn, o.churners/o.rooms+btoi(r < o.churners%o.rooms))
	}
	for i := 0; i < o.churners; i++ {
		r, k := i%o.rooms, i/o.rooms
		g.Go(func() error {
			c, err := w.connect(gctx, fmt.Sprintf("cb%s_r%d_c%d", w.run, r, k))
			if err != nil {
				return err
			}
			c.room = r
			mu.Lock()
			w.rooms[r].churners[k] = c
			w.churnConns = append(w.churnConns, c)
			mu.Unlock()
			return nil
		})
	}
	err := g.Wait()
	_ = bar.Finish()
	if err != nil {
		w.close()
		return nil, fmt.Errorf("failed to connect: %w", err)
	}
	// Sender i is member i/R of room i%R.
	for i := 0; i < o.senders; i++ {
		rm := w.rooms[i%o.rooms]
		c := rm.members[i/o.rooms]
		c.sender = i
		c.sem = make(chan struct{}, o.inflight)
		rm.senders = append(rm.senders, c)
	}
	if t.bare {
		err = w.joinBare(ctx)
	} else {
		err = w.createChatRooms(ctx)
	}
	if err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// joinBare makes every member join its room's group on the bare server.
func (w *world) joinBare(ctx context.Context) error {
	bar := newBar(w.o, int64(len(w.all)+len(w.churnConns)), "joining")
	defer bar.Finish()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(setupParallel)
	for _, rm := range w.rooms {
		rm.id = rm.name
		for _, c := range append(rm.members[:len(rm.members):len(rm.members)], rm.churners...) {
			g.Go(func() error {
				_, err := c.request(gctx, "bench.join", map[string]string{"group": rm.id}, "bench.joined", nil)
				_ = bar.Add(1)
				return err
			})
		}
	}
	return g.Wait()
}

type roomDetail struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Creator struct {
		ID int64 `json:"id"`
	} `json:"creator"`
}

func decodeRoom(f *ctlFrame) (roomDetail, bool) {
	var d roomDetail
	if json.Unmarshal(f.Data, &d) != nil {
		return d, false
	}
	return d, true
}

// createChatRooms learns every member's user id, then has each room's
// first member create the room with the others in it.
func (w *world) createChatRooms(ctx context.Context) error {
	// The dev-mode server assigns user ids: a member learns its own by
	// creating a room of its own and reading the creator.
	everyone := append(w.all[:len(w.all):len(w.all)], w.churnConns...)
	bar := newBar(w.o, int64(len(everyone)), "learning user ids")
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(setupParallel)
	for _, c := range everyone {
		g.Go(func() error {
			name := "cbwho-" + c.name
			if len(name) > 64 {
				name = name[:64]
			}
			f, err := c.request(gctx, "room.create", map[string]any{"type": "GroupChat", "name": name, "participants": []int64{}},
				"roomcreate.dispatch", func(f *ctlFrame) bool { d, ok := decodeRoom(f); return ok && d.Name == name })
			if err != nil {
				return err
			}
			d, _ := decodeRoom(f)
			if d.Creator.ID == 0 {
				return fmt.Errorf("%s: room.create answered without a creator id", c.name)
			}
			c.userID = d.Creator.ID
			_ = bar.Add(1)
			return nil
		})
	}
	err := g.Wait()
	_ = bar.Finish()
	if err != nil {
		return fmt.Errorf("failed to learn user ids: %w", err)
	}

	bar = newBar(w.o, int64(len(w.rooms)), "creating rooms")
	defer bar.Finish()
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, rm := range w.rooms {
		g.Go(func() error {
			if err := w.createChatRoom(gctx, rm); err != nil {
				return err
			}
			_ = bar.Add(1)
			return nil
		})
	}
	return g.Wait()
}

func (w *world) createChatRoom(ctx context.Context, rm *room) error {
	creator := rm.members[0]
	others := append(rm.members[1:len(rm.members):len(rm.members)], rm.churners...)
	ids := make([]int64, 0, len(others))
	for _, c := range others {
		ids = append(ids, c.userID)
	}
	n := len(others) + 1
	var data map[string]any
	channel := n > w.o.groupCap
	if channel {
		data = map[string]any{"type": "Channel", "name": rm.name, "subscribers": ids, "is_public": true, "max_subscribers": max(n, 300)}
	} else {
		data = map[string]any{"type": "GroupChat", "name": rm.name, "participants": ids, "max_participants": max(n, 100)}
	}
	isMine := func(f *ctlFrame) bool { d, ok := decodeRoom(f); return ok && d.Name == rm.name }
	f, err := creator.request(ctx, "room.create", data, "roomcreate.dispatch", isMine)
	if err != nil {
		return err
	}
	d, _ := decodeRoom(f)
	rm.id = d.ID
	// Every member has joined the room's group once its dispatch arrives.
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range others {
		g.Go(func() error {
			_, err := c.waitEvent(gctx, "roomcreate.dispatch", isMine)
			if err != nil {
				return fmt.Errorf("%s never got the roomcreate.dispatch of %s: %w", c.name, rm.name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// In a channel only moderators post: make the other senders moderators.
	if channel && len(rm.senders) > 1 {
		var mods []int64
		for _, c := range rm.senders {
			if c != creator {
				mods = append(mods, c.userID)
			}
		}
		_, err := creator.request(ctx, "room.modify", map[string]any{"room_id": rm.id, "action": "add_moderator", "data": map[string]any{"users": mods}},
			"roomupdate.dispatch", nil)
		if err != nil {
			return err
		}
	}
	return nil
}

// close closes every connection.
func (w *world) close() {
	closeConns(append(w.all, w.churnConns...))
	w.all, w.churnConns = nil, nil
	w.d.close()
}

// sendResult is what one sender did.
type sendResult struct {
	sent      int64
	writeErrs int64
}

// sendLoop sends benchmark messages from c into rm until ctx ends, paced
// at interval (0: as fast as the in-flight window allows).
func sendLoop(ctx context.Context, c *benchConn, rm *room, bare bool, interval time.Duration, size int) sendResult {
	var res sendResult
	var prefix, suffix []byte
	if bare {
		prefix = fmt.Appendf(nil, `{"event_type":"bench.send","data":{"group":%q,"content":"`, rm.id)
	} else {
		prefix = fmt.Appendf(nil, `{"event_type":"message.send","data":{"room_id":%q,"content":"`, rm.id)
	}
	suffix = []byte(`"}}`)
	buf := make([]byte, 0, len(prefix)+len(suffix)+size+64)
	// Paced senders start at a random phase of their interval: started in
	// step, they would all send at once and measure their own bursts.
	next := time.Now().Add(-interval + time.Duration(rand.Int64N(int64(interval)+1)))
	var timer *time.Timer
	for seq := int64(1); ctx.Err() == nil; seq++ {
		if interval > 0 {
			next = next.Add(interval)
			now := time.Now()
			if next.Before(now.Add(-interval)) {
				next = now // too far behind: do not burst to catch up
			}
			if d := next.Sub(now); d > 0 {
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				select {
				case <-timer.C:
				case <-ctx.Done():
					return res
				}
			}
		}
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			return res
		}
		buf = append(buf[:0], prefix...)
		buf = appendPayload(buf, time.Now().UnixNano(), c.sender, seq, size)
		buf = append(buf, suffix...)
		if err := c.ws.Write(context.Background(), websocket.MessageText, buf); err != nil {
			res.writeErrs++
			return res
		}
		res.sent++
	}
	return res
}

// measurement is the outcome of one send phase.
type measurement struct {
	start, sendEnd, end time.Time
	sent                int64
	sentPerRoom         []int64
	writeErrs           int64
	expected            int64
	delivered           int64
	serverCPU           time.Duration
	serverCPUOK         bool
	dbCPU               time.Duration
	dbBackends          int
	dbCPUOK             bool
	genCPU              time.Duration
	// sendBatches and batchedSends: the PostgreSQL store's batches of
	// sends in the phase (batchesOK when the server reports them).
	sendBatches, batchedSends int64
	batchesOK                 bool
}

// measure runs the senders for o.duration, then waits up to o.drain for
// the messages in flight.
func (w *world) measure(ctx context.Context, extra func(ctx context.Context)) measurement {
	o := w.o
	var m measurement
	for _, c := range w.all {
		c.delivered.Store(0)
	}
	cpu0, cpuOK := w.t.cpu()
	db0, _, db0OK := w.t.dbCPU(ctx)
	st0, st0OK := w.t.serverStats(false)
	gen0 := selfCPU()
	m.start = time.Now()
	sctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()

	var interval time.Duration
	if o.rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(o.senders) / o.rate)
	}
	m.sentPerRoom = make([]int64, len(w.rooms))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, rm := range w.rooms {
		for _, c := range rm.senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := sendLoop(sctx, c, rm, w.t.bare, interval, o.size)
				mu.Lock()
				m.sent += res.sent
				m.writeErrs += res.writeErrs
				m.sentPerRoom[rm.index] += res.sent
				mu.Unlock()
			}()
		}
	}
	if extra != nil {
		wg.Add(1)
		go func() { defer wg.Done(); extra(sctx) }()
	}
	total := func() int64 {
		var n int64
		for _, c := range w.all {
			n += c.delivered.Load()
		}
		return n
	}
	bar := newBar(o, int64(o.duration/time.Second), "sending")
	sendDone := make(chan struct{})
	go func() { wg.Wait(); close(sendDone) }()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	lastN, lastT := int64(0), m.start
loop:
	for {
		select {
		case <-sendDone:
			break loop
		case now := <-tick.C:
			n := total()
			rate := float64(n-lastN) / now.Sub(lastT).Seconds()
			lastN, lastT = n, now
			bar.Describe(fmt.Sprintf("sending: %.0f deliveries/s", rate))
			_ = bar.Set64(int64(now.Sub(m.start) / time.Second))
		}
	}
	_ = bar.Finish()
	m.sendEnd = time.Now()
	for r, rm := range w.rooms {
		m.expected += m.sentPerRoom[r] * int64(len(w.measured(rm)))
	}
	deadline := time.Now().Add(o.drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if w.measuredTotal() >= m.expected {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.delivered = total()
	m.end = m.start
	for _, c := range w.all {
		if t := c.lastDelivery.Load(); t > m.end.UnixNano() {
			m.end = time.Unix(0, t)
		}
	}
	if cpu1, ok := w.t.cpu(); ok && cpuOK {
		m.serverCPU, m.serverCPUOK = cpu1-cpu0, true
	}
	if db1, n, ok := w.t.dbCPU(ctx); ok && db0OK {
		m.dbCPU, m.dbBackends, m.dbCPUOK = db1-db0, n, true
	}
	if st1, ok := w.t.serverStats(false); ok && st0OK && st1.SendBatches > 0 {
		m.sendBatches, m.batchedSends, m.batchesOK = st1.SendBatches-st0.SendBatches, st1.BatchedSends-st0.BatchedSends, true
	}
	m.genCPU = selfCPU() - gen0
	return m
}

// measured returns the members of a room whose deliveries are checked.
func (w *world) measured(rm *room) []*benchConn { return rm.members }

func (w *world) measuredTotal() int64 {
	var n int64
	for _, rm := range w.rooms {
		for _, c := range w.measured(rm) {
			n += c.delivered.Load()
		}
	}
	return n
}

// runFanout runs the fanout and persist scenarios.
func runFanout(ctx context.Context, o *options) (*report, error) {
	t, err := startTarget(ctx, o)
	if err != nil {
		return nil, err
	}
	defer t.stop()
	w, err := buildRooms(ctx, o, t)
	if err != nil {
		return nil, err
	}
	rssBefore, _ := t.rss()
	m := w.measure(ctx, nil)
	rep := &report{scenario: o.scenario}
	w.describe(rep, t)
	w.addMeasurement(rep, m)
	if rss, ok := t.rss(); ok {
		rep.add("server_rss_before_mib", mib(rssBefore), "MiB")
		rep.add("server_rss_after_mib", mib(rss), "MiB")
	}
	w.close()
	return rep, ctx.Err()
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func (w *world) describe(rep *report, t *target) {
	o := w.o
	rep.add("server", serverMode(o, t), "")
	rep.add("rooms", o.rooms, "")
	rep.add("members_per_room", o.members, "")
	rep.add("senders", o.senders, "")
	rep.add("inflight_per_sender", o.inflight, "")
	rep.add("batched_framing", o.batch, "")
	if o.rate > 0 {
		rep.add("target_rate", o.rate, "sends/s")
	} else {
		rep.add("target_rate", "max", "")
	}
	rep.add("message_bytes", o.size, "")
}

// addMeasurement adds the counts, rates and latencies of a send phase.
func (w *world) addMeasurement(rep *report, m measurement) {
	sendSecs := max(m.sendEnd.Sub(m.start).Seconds(), 1e-3)
	delivSecs := m.end.Sub(m.start).Seconds()
	if delivSecs < sendSecs/2 {
		// Nothing (or next to nothing) was delivered: rate over the send time.
		delivSecs = sendSecs
	}
	lat, ack := &hist{}, &hist{}
	var gaps, reordered, errs, slow, closed, unacked, dropped int64
	var lastErr string
	for _, c := range w.all {
		select {
		case <-c.done:
			closed++
			if c.closeCode == 4008 {
				slow++
			}
		default:
		}
		errs += c.errs.Load()
		dropped += c.dropped.Load()
		if p := c.lastErr.Load(); p != nil {
			lastErr = *p
		}
		if c.sem != nil {
			unacked += int64(len(c.sem))
		}
	}
	// The read loops' own state is read once they are done, or after the
	// drain, when no benchmark message is in flight: close to be sure.
	for _, c := range w.all {
		c.close(false)
		lat.merge(c.lat)
		ack.merge(c.ack)
		gaps += c.gaps
		reordered += c.reordered
	}
	rep.add("duration_s", round(sendSecs, 2), "s")
	rep.add("sent", m.sent, "messages")
	rep.add("sends_per_s", round(float64(m.sent)/sendSecs, 1), "/s")
	rep.add("expected_deliveries", m.expected, "")
	rep.add("delivered", m.delivered, "")
	rep.add("lost", m.expected-w.measuredTotal(), "")
	rep.add("deliveries_per_s", round(float64(m.delivered)/delivSecs, 0), "/s")
	rep.add("latency_ms", lat.summary(), "ms")
	rep.add("ack_latency_ms", ack.summary(), "ms")
	rep.add("errors", errs+m.writeErrs, "")
	if lastErr != "" {
		rep.note("last error: %s", lastErr)
	}
	rep.add("unacked_at_end", unacked, "")
	rep.add("gaps", gaps, "")
	rep.add("duplicates_or_reordered", reordered, "")
	rep.add("slow_consumer_closes", slow, "")
	rep.add("closed_early", closed, "")
	if dropped > 0 {
		rep.add("unclaimed_frames_dropped", dropped, "")
	}
	if n := w.notificationsMissing.Load(); n > 0 {
		rep.note("%d connections got no chat.notifications on connect", n)
	}
	if m.serverCPUOK {
		rep.add("server_cpu_s", round(m.serverCPU.Seconds(), 2), "s")
		rep.add("server_cores_busy", round(m.serverCPU.Seconds()/delivSecs, 2), "")
		if m.delivered > 0 {
			rep.add("server_cpu_per_delivery_us", round(float64(m.serverCPU.Microseconds())/float64(m.delivered), 3), "µs")
		}
		if m.sent > 0 {
			rep.add("server_cpu_per_send_us", round(float64(m.serverCPU.Microseconds())/float64(m.sent), 1), "µs")
		}
	}
	if m.dbCPUOK {
		rep.add("database_cores_busy", round(m.dbCPU.Seconds()/delivSecs, 2), "")
		if m.sent > 0 {
			rep.add("database_cpu_per_send_us", round(float64(m.dbCPU.Microseconds())/float64(m.sent), 1), "µs")
		}
		rep.add("database_backends", m.dbBackends, "")
	}
	if m.batchesOK && m.sendBatches > 0 {
		rep.add("send_batches", m.sendBatches, "")
		rep.add("sends_per_batch", round(float64(m.batchedSends)/float64(m.sendBatches), 2), "")
	}
	rep.add("generator_cores_busy", round(m.genCPU.Seconds()/delivSecs, 2), "")
}

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	if v < 0 {
		return -float64(int64(-v*p+0.5)) / p
	}
	return float64(int64(v*p+0.5)) / p
}

// btoi is 1 for true and 0 for false.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
