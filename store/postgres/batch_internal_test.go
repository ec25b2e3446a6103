package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/internal/testenv"
	"github.com/chatmux/chatmux/store"
)

// batchStore is a migrated store in a fresh schema, with users 1-3 and a
// group of them.
func batchStore(t *testing.T, opts Options) (*Store, store.Room) {
	t.Helper()
	ctx := context.Background()
	st, err := OpenOptions(ctx, testenv.DatabaseSchema(t, "t_"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i <= 3; i++ {
		if _, err := st.UpsertUser(ctx, store.User{ID: i, Username: fmt.Sprintf("u%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	g, err := st.CreateRoom(ctx, store.NewRoom{Type: store.Group, CreatorID: 1, Name: "g", Members: []int64{2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	return st, g
}

// waitFor waits until cond holds (it polls: the writer's queue has no
// event to wait on), failing the test after ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBatchEdges makes the batches deterministic: a transaction holds the
// room's row lock, so the first send's batch waits in flight while the
// others queue up behind it and then go as one batch. It checks that
//   - the first caller, cancelled while its batch is in flight, gets
//     context.Canceled, and its message is stored anyway (a retry finds it);
//   - the queued sends go in one batch, except a retry of a client_msg_id
//     already in that batch, which goes in the next and is a duplicate;
//   - the failing sends of that batch fail alone, the others are stored
//     with gapless seqs in arrival order.
func TestBatchEdges(t *testing.T) {
	ctx := context.Background()
	st, g := batchStore(t, Options{BatchWriters: 1})
	sizes := make(chan int, 16)
	st.batch[0].onBatch = func(n int) { sizes <- n }

	lock, err := st.db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.ExecContext(ctx, `SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE`, g.ID); err != nil {
		t.Fatal(err)
	}

	firstCtx, cancelFirst := context.WithCancel(ctx)
	first := store.NewMessage{RoomID: g.ID, SenderID: 1, Content: "first", ClientMsgID: "first", Notify: true}
	firstDone := make(chan error, 1)
	go func() {
		_, err := st.SendMessage(firstCtx, first)
		firstDone <- err
	}()
	if n := <-sizes; n != 1 {
		t.Fatalf("first batch has %d sends, want 1", n)
	}
	cancelFirst()
	if err := <-firstDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller got %v, want context.Canceled", err)
	}

	missing := uuid.New()
	type outcome struct {
		res store.SendResult
		err error
	}
	ins := []store.NewMessage{
		{RoomID: g.ID, SenderID: 2, Content: "a", ClientMsgID: "a", Notify: true},
		{RoomID: g.ID, SenderID: 3, Content: "bad parent", ParentID: &missing},
		{RoomID: g.ID, SenderID: 2, Content: "a again", ClientMsgID: "a", Notify: true},
		{RoomID: uuid.New(), SenderID: 1, Content: "no room"},
		{RoomID: g.ID, SenderID: 3, Content: "b", Notify: true,
			Attachments: []store.NewAttachment{{MediaURL: "u", MediaType: store.MediaFile, MimeType: "text/plain"}}},
		{RoomID: g.ID, SenderID: 42, Content: "no user"},
		{RoomID: g.ID, SenderID: 1, Content: "c", CheckSender: true},
	}
	outs := make([]chan outcome, len(ins))
	for i, in := range ins {
		outs[i] = make(chan outcome, 1)
		go func() {
			res, err := st.SendMessage(ctx, in)
			outs[i] <- outcome{res, err}
		}()
		// One at a time into the queue, so that arrival order is ins order.
		waitFor(t, "the send to queue", func() bool { return len(st.batch[0].reqs) == i+1 })
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := <-sizes; n != len(ins)-1 {
		t.Fatalf("second batch has %d sends, want %d (all but the retry)", n, len(ins)-1)
	}
	if n := <-sizes; n != 1 {
		t.Fatalf("third batch has %d sends, want 1 (the retry)", n)
	}
	got := make([]outcome, len(ins))
	for i := range ins {
		got[i] = <-outs[i]
	}
	for _, i := range []int{0, 4, 6} {
		if got[i].err != nil {
			t.Fatalf("send %d: %v", i, got[i].err)
		}
	}
	if got[0].res.Message.Seq != 2 || got[4].res.Message.Seq != 3 || got[6].res.Message.Seq != 4 {
		t.Fatalf("seqs %d, %d, %d; want 2, 3, 4", got[0].res.Message.Seq, got[4].res.Message.Seq, got[6].res.Message.Seq)
	}
	if len(got[4].res.Attachments) != 1 || got[4].res.Notification == nil ||
		fmt.Sprint(got[4].res.Notification.Recipients) != "[1 2]" {
		t.Fatalf("send 4: %+v", got[4].res)
	}
	if r := got[2]; r.err != nil || !r.res.Duplicate || r.res.Message.ID != got[0].res.Message.ID || r.res.Message.Content != "a" {
		t.Fatalf("retry in the same batch: %+v, %v", r.res, r.err)
	}
	var ve *store.ValidationError
	if !errors.As(got[1].err, &ve) || ve.Field != "parent_message_id" {
		t.Fatalf("bad parent: %v", got[1].err)
	}
	if !errors.Is(got[3].err, store.ErrNotFound) {
		t.Fatalf("missing room: %v", got[3].err)
	}
	if !errors.Is(got[5].err, store.ErrConflict) {
		t.Fatalf("unknown sender: %v", got[5].err)
	}

	// The cancelled first send was stored (seq 1); its retry finds it.
	res, err := st.SendMessage(ctx, first)
	if err != nil || !res.Duplicate || res.Message.Seq != 1 || res.Message.Content != "first" {
		t.Fatalf("retry of the cancelled send: %+v, %v", res, err)
	}
	if n := <-sizes; n != 1 {
		t.Fatalf("retry batch has %d sends", n)
	}
	r, err := st.Room(ctx, g.ID)
	if err != nil || r.LastSeq != 4 || *r.LastMessageID != got[6].res.Message.ID {
		t.Fatalf("room: %+v, %v", r, err)
	}
	if s := st.SendStats(); s.Batches != 4 || s.Sends != 9 || s.Retried != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestBatchStatementFailure: when the batch statement itself fails (here
// a row that breaks a CHECK constraint the statement does not test for),
// nothing of the batch is stored, and the writer writes the rows again one
// by one: the bad one fails alone, the others are stored.
func TestBatchStatementFailure(t *testing.T) {
	ctx := context.Background()
	st, g := batchStore(t, Options{})
	var reqs []*sendReq
	for i := range 4 {
		in, err := store.ValidateNewMessage(store.NewMessage{RoomID: g.ID, SenderID: 1, Content: fmt.Sprint(i),
			Attachments: []store.NewAttachment{{MediaURL: "u", MediaType: store.MediaImage}}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := newPendingSend(in)
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			p.atts[0].MediaType = "hologram" // past validation: only the database refuses it
		}
		reqs = append(reqs, &sendReq{ctx: ctx, in: p, done: make(chan sendOutcome, 1)})
	}
	st.batch.of(g.ID).write(reqs)
	seq := int64(0)
	for i, r := range reqs {
		out := <-r.done
		if i == 2 {
			if !errors.Is(out.err, store.ErrConflict) {
				t.Fatalf("bad row: %v, want ErrConflict", out.err)
			}
			continue
		}
		if out.err != nil {
			t.Fatalf("row %d: %v", i, out.err)
		}
		seq++
		if out.res.Message.Seq != seq {
			t.Fatalf("row %d has seq %d, want %d", i, out.res.Message.Seq, seq)
		}
	}
	if s := st.SendStats(); s.Retried != 1 {
		t.Fatalf("stats %+v: want one retried batch", s)
	}
	views, err := st.MessagesAfter(ctx, g.ID, 0, 10)
	if err != nil || len(views) != 3 {
		t.Fatalf("%d messages stored, %v; want 3", len(views), err)
	}
	for _, v := range views {
		if len(v.Attachments) != 1 {
			t.Fatalf("message %d has %d attachments", v.Seq, len(v.Attachments))
		}
	}
}

// TestBatchBounds: a batch takes at most MaxBatch sends and MaxBatchBytes
// bytes; a send larger than the byte bound goes alone.
func TestBatchBounds(t *testing.T) {
	ctx := context.Background()
	st, g := batchStore(t, Options{MaxBatch: 3, MaxBatchBytes: 4000})
	var all []*sendReq
	for i, size := range []int{10, 10, 10, 10, 10, 5000, 1500, 1500, 1500} {
		in, err := store.ValidateNewMessage(store.NewMessage{RoomID: g.ID, SenderID: 1, Content: fmt.Sprintf("%d%*s", i, size, "")})
		if err != nil {
			t.Fatal(err)
		}
		p, err := newPendingSend(in)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, &sendReq{ctx: ctx, in: p, done: make(chan sendOutcome, 1)})
	}
	var sizes []int
	carry := all
	for len(carry) > 0 {
		var batch []*sendReq
		batch, carry = st.batch.of(g.ID).collect(carry)
		sizes = append(sizes, len(batch))
		st.batch.of(g.ID).write(batch)
	}
	if fmt.Sprint(sizes) != "[3 2 1 2 1]" {
		t.Fatalf("batch sizes %v, want [3 2 1 2 1]", sizes)
	}
	for i, r := range all {
		out := <-r.done
		if out.err != nil || out.res.Message.Seq != int64(i+1) {
			t.Fatalf("send %d: seq %d, %v", i, out.res.Message.Seq, out.err)
		}
	}
}

// TestBatchClose: sends after Close fail with store.ErrUnavailable.
func TestBatchClose(t *testing.T) {
	ctx := context.Background()
	st, g := batchStore(t, Options{})
	if _, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1, Content: "x"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1, Content: "y"}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("send after Close: %v", err)
	}
}
