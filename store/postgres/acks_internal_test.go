package postgres

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/store"
)

// ackReq is a queued Acknowledge, for calling the writer directly.
type ackReq = batchReq[*pendingAck, ackOutcome]

// TestAckBatchEdges makes the batches of acknowledgements deterministic: a
// transaction holds the lock of a message's notification, so the first
// call's batch waits in flight while the others queue up behind it and
// then go as one batch. It checks that the first caller, cancelled in
// flight, gets context.Canceled and its acknowledgement is written anyway;
// that the queued calls of two users, a repeat and one naming a missing
// message share one batch, and that each gets what it would alone; and
// that the batch's statement, emptying a notification, succeeds itself.
func TestAckBatchEdges(t *testing.T) {
	ctx := context.Background()
	st, g := batchStore(t, Options{})
	sizes := make(chan int, 8)
	st.acks.onBatch = func(n int) { sizes <- n }
	m, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1, Content: "m", Notify: true})
	if err != nil {
		t.Fatal(err)
	}
	own, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 3, Content: "own", Notify: true})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := st.db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT id FROM notifications WHERE message_id = $1 FOR UPDATE`, m.Message.ID); err != nil {
		t.Fatal(err)
	}

	first, cancel := context.WithCancel(ctx)
	firstErr := make(chan error, 1)
	go func() {
		_, err := st.Acknowledge(first, 2, []uuid.UUID{m.Message.ID})
		firstErr <- err
	}()
	if n := <-sizes; n != 1 {
		t.Fatalf("first batch has %d calls, want 1", n)
	}
	cancel()
	if err := <-firstErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v, want context.Canceled", err)
	}

	type call struct {
		user int64
		ids  []uuid.UUID
	}
	calls := []call{
		{3, []uuid.UUID{own.Message.ID, m.Message.ID, m.Message.ID}},
		{2, []uuid.UUID{m.Message.ID, own.Message.ID}},
		{3, []uuid.UUID{m.Message.ID, uuid.New()}},
	}
	type result struct {
		acked []uuid.UUID
		err   error
	}
	results := make([]chan result, len(calls))
	for i, c := range calls {
		results[i] = make(chan result, 1)
		go func() {
			acked, err := st.Acknowledge(ctx, c.user, c.ids)
			results[i] <- result{acked, err}
		}()
		waitFor(t, "the call to queue", func() bool { return len(st.acks.reqs) == i+1 })
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := <-sizes; n != len(calls) {
		t.Fatalf("second batch has %d calls, want %d", n, len(calls))
	}
	want := []result{
		{[]uuid.UUID{m.Message.ID}, nil},
		{[]uuid.UUID{m.Message.ID, own.Message.ID}, nil},
		{nil, store.ErrNotFound},
	}
	for i, ch := range results {
		r := <-ch
		if !slices.Equal(r.acked, want[i].acked) || !errors.Is(r.err, want[i].err) {
			t.Fatalf("call %d: %v, %v; want %v, %v", i, r.acked, r.err, want[i].acked, want[i].err)
		}
	}
	var rows []struct {
		MessageID uuid.UUID `db:"message_id"`
		UserID    int64     `db:"user_id"`
	}
	if err := st.db.SelectContext(ctx, &rows, `SELECT message_id, user_id FROM deliveries ORDER BY user_id, message_id`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("deliveries %+v, want m to users 2 and 3, own to user 2", rows)
	}
	var left int
	if err := st.db.GetContext(ctx, &left, `SELECT count(*) FROM notifications WHERE message_id = $1`, m.Message.ID); err != nil || left != 0 {
		t.Fatalf("%d notifications of m left (%v), want 0: both recipients acknowledged it", left, err)
	}
	// The batch statement did it all: no batch fell back to one call at a
	// time (which gives the same answers, slowly).
	if n := st.acks.retried.Load(); n != 0 {
		t.Fatalf("%d batches written again call by call, want 0", n)
	}
}

// TestAckBatchStatementFailure: when the batch's statement fails (here
// one call is by a user who does not exist, against the deliveries'
// foreign key), nothing of it is written and each call is written again
// alone: the good one succeeds, the bad one fails as it would alone.
func TestAckBatchStatementFailure(t *testing.T) {
	ctx := context.Background()
	st, g := batchStore(t, Options{})
	m, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1, Content: "m", Notify: true})
	if err != nil {
		t.Fatal(err)
	}
	_, alone := st.acknowledgeOne(ctx, 99, []uuid.UUID{m.Message.ID})
	if alone == nil {
		t.Fatal("acknowledgement by a missing user succeeded")
	}
	reqs := []*ackReq{
		{ctx: ctx, in: &pendingAck{user: 2, ids: []uuid.UUID{m.Message.ID}}, done: make(chan ackOutcome, 1)},
		{ctx: ctx, in: &pendingAck{user: 99, ids: []uuid.UUID{m.Message.ID}}, done: make(chan ackOutcome, 1)},
	}
	st.acks.write(reqs)
	if out := <-reqs[0].done; out.err != nil || !slices.Equal(out.acked, []uuid.UUID{m.Message.ID}) {
		t.Fatalf("good call: %v, %v", out.acked, out.err)
	}
	if out := <-reqs[1].done; out.err == nil || out.err.Error() != alone.Error() {
		t.Fatalf("bad call: %v, want %v (as alone)", out.err, alone)
	}
	if n := st.acks.retried.Load(); n != 1 {
		t.Fatalf("%d batches retried, want 1", n)
	}
}

// TestAckBatchClose: acknowledgements after Close fail with
// store.ErrUnavailable.
func TestAckBatchClose(t *testing.T) {
	ctx := context.Background()
	st, g := batchStore(t, Options{})
	m, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1, Content: "m", Notify: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Acknowledge(ctx, 2, []uuid.UUID{m.Message.ID}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := st.Acknowledge(ctx, 3, []uuid.UUID{m.Message.ID}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("acknowledgement after Close: %v", err)
	}
}
