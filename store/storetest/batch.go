package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/store"
)

// The edges of sends written together (group commit in store/postgres):
// concurrent sends to one room, retries of the same client_msg_id in the
// same and in later batches, a failing send among good ones, a caller that
// gives up while its send is in flight, and the sender check that rides
// with the send. A store that writes one send at a time passes them too.

// testBatchConcurrentRetries: senders send in one room at once, each of
// them several messages in a row, every message sent twice at the same time
// (a retry racing the original) and once more afterwards. Every
// client_msg_id is stored once, seq runs 1..n without gap, each sender's
// messages take seqs in the order the sender sent them, and every retry
// returns the stored message with Duplicate true.
func testBatchConcurrentRetries(t *testing.T, st store.Store) {
	us := users(t, st, 5)
	g := group(t, st, 1, ids(us)[1:]...)
	const perSender = 8
	type key struct {
		sender int64
		i      int
	}
	var mu sync.Mutex
	got := map[key][]store.SendResult{}
	record := func(k key, res store.SendResult) {
		mu.Lock()
		got[k] = append(got[k], res)
		mu.Unlock()
	}
	var failed error
	fail := func(err error) {
		mu.Lock()
		if failed == nil {
			failed = err
		}
		mu.Unlock()
	}
	parallel(len(us), func(i int) {
		sender := us[i].ID
		for j := range perSender {
			in := store.NewMessage{RoomID: g.ID, SenderID: sender, Content: fmt.Sprintf("%d-%d", sender, j),
				ClientMsgID: fmt.Sprintf("c-%d", j), Notify: true}
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					res, err := st.SendMessage(ctx, in)
					if err != nil {
						fail(fmt.Errorf("send %d of %d: %w", j, sender, err))
						return
					}
					record(key{sender, j}, res)
				})
			}
			wg.Wait()
			res, err := st.SendMessage(ctx, in)
			if err != nil {
				fail(fmt.Errorf("late retry %d of %d: %w", j, sender, err))
				continue
			}
			record(key{sender, j}, res)
		}
	})
	ok(t, failed)
	seqOf := map[int64]key{}
	for _, u := range us {
		last := int64(0)
		for j := range perSender {
			rs := got[key{u.ID, j}]
			if len(rs) != 3 {
				t.Fatalf("sender %d message %d: %d results, want 3", u.ID, j, len(rs))
			}
			fresh := 0
			for _, r := range rs {
				if r.Message.ID != rs[0].Message.ID || r.Message.Seq != rs[0].Message.Seq {
					t.Fatalf("sender %d message %d: results name different messages: %+v / %+v", u.ID, j, r.Message, rs[0].Message)
				}
				if r.Message.Content != fmt.Sprintf("%d-%d", u.ID, j) {
					t.Fatalf("sender %d message %d: content %q", u.ID, j, r.Message.Content)
				}
				if !r.Duplicate {
					fresh++
				}
			}
			if fresh != 1 {
				t.Fatalf("sender %d message %d: %d results without Duplicate, want 1", u.ID, j, fresh)
			}
			seq := rs[0].Message.Seq
			if seq <= last {
				t.Fatalf("sender %d: message %d has seq %d after seq %d: not in send order", u.ID, j, seq, last)
			}
			last = seq
			if other, dup := seqOf[seq]; dup {
				t.Fatalf("seq %d given to %v and %v", seq, other, key{u.ID, j})
			}
			seqOf[seq] = key{u.ID, j}
		}
	}
	n := len(us) * perSender
	for s := int64(1); s <= int64(n); s++ {
		if _, ok := seqOf[s]; !ok {
			t.Fatalf("seq %d missing: seqs must run 1..%d without gap", s, n)
		}
	}
	p, err := st.MessagesPage(ctx, g.ID, 1, 0)
	ok(t, err)
	if p.Total != n {
		t.Fatalf("%d messages stored, want %d", p.Total, n)
	}
	for i := 1; i < len(p.Messages); i++ {
		if p.Messages[i].CreatedAt.After(p.Messages[i-1].CreatedAt) {
			t.Fatalf("seq %d created after seq %d", p.Messages[i].Seq, p.Messages[i-1].Seq)
		}
	}
	r, err := st.Room(ctx, g.ID)
	ok(t, err)
	if r.LastSeq != int64(n) || r.LastMessageID == nil || *r.LastMessageID != p.Messages[0].ID {
		t.Fatalf("room: last seq %d, last message %v; want %d, %v", r.LastSeq, r.LastMessageID, n, p.Messages[0].ID)
	}
	// One notification per stored message, none per retry.
	if got := len(pending(t, st, 1)[g.ID]); got != n-perSender {
		t.Fatalf("user 1 has %d notifications, want %d", got, n-perSender)
	}
}

// testBatchFailingRow: sends that fail (a parent or forwarded message that
// does not exist, a sender who is not a user, a missing room, a sender who
// may not send) go at the same time as good ones. Each fails alone with
// its own error; every good one is stored, with seqs 1..n.
func testBatchFailingRow(t *testing.T, st store.Store) {
	users(t, st, 3)
	g := group(t, st, 1, 2)
	const good, rounds = 12, 3
	missing := uuid.New()
	bad := []struct {
		name  string
		in    store.NewMessage
		check func(error)
	}{
		{"parent", store.NewMessage{RoomID: g.ID, SenderID: 1, Content: "r", ParentID: &missing}, func(err error) {
			wantValidation(t, err, "parent_message_id", "")
		}},
		{"forward", store.NewMessage{RoomID: g.ID, SenderID: 2, Content: "f", ForwardedFromID: &missing}, func(err error) {
			wantValidation(t, err, "forwarded_from_id", "")
		}},
		{"sender", store.NewMessage{RoomID: g.ID, SenderID: 99, Content: "x"}, func(err error) { wantErr(t, err, store.ErrConflict) }},
		{"room", store.NewMessage{RoomID: uuid.New(), SenderID: 1, Content: "x"}, func(err error) { wantErr(t, err, store.ErrNotFound) }},
		{"member", store.NewMessage{RoomID: g.ID, SenderID: 3, Content: "x", CheckSender: true}, func(err error) {
			wantErr(t, err, store.ErrNotMember)
		}},
	}
	for round := range rounds {
		results := make([]store.SendResult, good)
		errs := make([]error, good+len(bad))
		parallel(good+len(bad), func(i int) {
			if i < good {
				results[i], errs[i] = st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: int64(i%2 + 1),
					Content: fmt.Sprintf("good %d", i), ClientMsgID: fmt.Sprintf("r%d-%d", round, i), Notify: true,
					Attachments: []store.NewAttachment{{MediaURL: fmt.Sprintf("u%d", i), MediaType: store.MediaFile, MimeType: "text/plain"}}})
				return
			}
			_, errs[i] = st.SendMessage(ctx, bad[i-good].in)
		})
		for i := range good {
			if errs[i] != nil {
				t.Fatalf("round %d: good send %d failed with the bad ones: %v", round, i, errs[i])
			}
			if len(results[i].Attachments) != 1 || results[i].Notification == nil {
				t.Fatalf("round %d: good send %d: %+v", round, i, results[i])
			}
		}
		for i, b := range bad {
			if errs[good+i] == nil {
				t.Fatalf("round %d: bad send %q succeeded", round, b.name)
			}
			b.check(errs[good+i])
		}
	}
	p, err := st.MessagesPage(ctx, g.ID, 1, 0)
	ok(t, err)
	if p.Total != good*rounds {
		t.Fatalf("%d messages stored, want %d", p.Total, good*rounds)
	}
	for i, v := range p.Messages {
		if v.Seq != int64(good*rounds-i) {
			t.Fatalf("seqs %v: want %d..1 without gap", seqs(p.Messages), good*rounds)
		}
		if len(v.Attachments) != 1 {
			t.Fatalf("message %d has %d attachments", v.Seq, len(v.Attachments))
		}
	}
}

// testBatchCancel: callers give up (their context ends) at any point of
// their sends, in flight included. A caller either gets its result or the
// context's error; whatever was stored stays stored and whole, and a retry
// with the same client_msg_id then returns it (Duplicate true) or stores it
// now. Seqs stay gapless.
func testBatchCancel(t *testing.T, st store.Store) {
	users(t, st, 2)
	g := group(t, st, 1, 2)
	const n = 30
	errs := make([]error, n)
	parallel(n, func(i int) {
		c, cancel := context.WithCancel(ctx)
		in := store.NewMessage{RoomID: g.ID, SenderID: 1, Content: fmt.Sprint(i), ClientMsgID: fmt.Sprintf("k%d", i), Notify: true}
		if i%3 == 0 {
			cancel() // before the send: nothing may be stored
			_, errs[i] = st.SendMessage(c, in)
			if !errors.Is(errs[i], context.Canceled) {
				errs[i] = fmt.Errorf("send with a cancelled context: %v, want context.Canceled", errs[i])
			} else {
				errs[i] = nil
			}
			return
		}
		done := make(chan error, 1)
		go func() {
			_, err := st.SendMessage(c, in)
			done <- err
		}()
		if i%3 == 1 {
			cancel() // while the send is under way, wherever it is
		}
		err := <-done
		cancel()
		if err != nil && (i%3 == 2 || !errors.Is(err, context.Canceled)) {
			errs[i] = fmt.Errorf("send %d: %w", i, err)
		}
	})
	for _, err := range errs {
		ok(t, err)
	}
	before, err := st.MessagesPage(ctx, g.ID, 1, 0)
	ok(t, err)
	stored := map[string]store.MessageView{}
	for _, m := range before.Messages {
		stored[m.ClientMsgID] = m
	}
	for i := range n {
		if i%3 == 0 {
			if _, ok := stored[fmt.Sprintf("k%d", i)]; ok {
				t.Fatalf("send %d with a context cancelled before it was stored", i)
			}
		}
	}
	for i := range n {
		k := fmt.Sprintf("k%d", i)
		res, err := st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 1, Content: fmt.Sprint(i), ClientMsgID: k, Notify: true})
		ok(t, err)
		if m, was := stored[k]; was {
			if !res.Duplicate || res.Message.ID != m.ID || res.Message.Seq != m.Seq {
				t.Fatalf("retry of stored %s: %+v, want duplicate of seq %d", k, res, m.Seq)
			}
		} else if res.Duplicate {
			t.Fatalf("retry of %s found a message that was not stored before", k)
		}
	}
	after, err := st.MessagesPage(ctx, g.ID, 1, 0)
	ok(t, err)
	if after.Total != n {
		t.Fatalf("%d messages after the retries, want %d", after.Total, n)
	}
	for i, m := range after.Messages {
		if m.Seq != int64(n-i) {
			t.Fatalf("seqs %v: want %d..1 without gap", seqs(after.Messages), n)
		}
	}
}

// testCheckSender: NewMessage.CheckSender applies Membership.CanSend in the
// store: every room type, roles, permissions, a locked group, a missing
// room, and a retry by a sender who lost the right.
func testCheckSender(t *testing.T, st store.Store) {
	users(t, st, 5)
	g := group(t, st, 1, 2, 3)
	c := channel(t, st, 1, 2, 3, 4)
	one, err := st.CreateRoom(ctx, store.NewRoom{Type: store.OneToOne, CreatorID: 1, Members: []int64{2}})
	ok(t, err)
	_, err = st.SetRole(ctx, g.ID, []int64{2}, true)
	ok(t, err)
	_, err = st.SetRole(ctx, c.ID, []int64{2}, true)
	ok(t, err)
	_, err = st.SetPermissions(ctx, c.ID, []int64{3}, []store.Permission{store.PermSendMessages}, true)
	ok(t, err)
	sendAs := func(room uuid.UUID, sender int64) (store.SendResult, error) {
		return st.SendMessage(ctx, store.NewMessage{RoomID: room, SenderID: sender, Content: "x", CheckSender: true})
	}
	check := func(name string, room uuid.UUID, sender int64, want error) {
		t.Helper()
		_, err := sendAs(room, sender)
		if want == nil {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return
		}
		if !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", name, err, want)
		}
	}
	check("group member", g.ID, 3, nil)
	check("group non-member", g.ID, 4, store.ErrNotMember)
	check("missing room", uuid.New(), 1, store.ErrNotFound)
	check("one-to-one participant", one.ID, 2, nil)
	check("one-to-one outsider", one.ID, 3, store.ErrNotMember)
	check("channel creator", c.ID, 1, nil)
	check("channel moderator", c.ID, 2, nil)
	check("channel subscriber with can_send_messages", c.ID, 3, nil)
	check("channel subscriber", c.ID, 4, store.ErrCannotSend)
	check("channel outsider", c.ID, 5, store.ErrNotMember)
	locked := true
	_, err = st.UpdateRoom(ctx, g.ID, store.RoomUpdate{GroupLocked: &locked})
	ok(t, err)
	check("locked group creator", g.ID, 1, nil)
	check("locked group admin", g.ID, 2, nil)
	check("locked group member", g.ID, 3, store.ErrCannotSend)
	// Without CheckSender the store does not check (that is the caller's).
	_, err = st.SendMessage(ctx, store.NewMessage{RoomID: g.ID, SenderID: 4, Content: "unchecked"})
	ok(t, err)
	// The check comes before idempotency: a retry by a sender who has lost
	// the right fails.
	in := store.NewMessage{RoomID: c.ID, SenderID: 3, Content: "once", ClientMsgID: "k", CheckSender: true}
	first, err := st.SendMessage(ctx, in)
	ok(t, err)
	again, err := st.SendMessage(ctx, in)
	ok(t, err)
	if !again.Duplicate || again.Message.ID != first.Message.ID {
		t.Fatalf("retry = %+v", again)
	}
	_, err = st.SetPermissions(ctx, c.ID, []int64{3}, []store.Permission{store.PermSendMessages}, false)
	ok(t, err)
	_, err = st.SendMessage(ctx, in)
	wantErr(t, err, store.ErrCannotSend)
	// The checked sends that failed stored nothing.
	p, err := st.MessagesPage(ctx, c.ID, 1, 0)
	ok(t, err)
	if p.Total != 4 {
		t.Fatalf("channel has %d messages, want 4", p.Total)
	}
	// Membership.CanSend agrees with what the store did.
	for _, tc := range []struct {
		room   uuid.UUID
		sender int64
		want   bool
	}{{g.ID, 1, true}, {g.ID, 2, true}, {g.ID, 3, false}, {g.ID, 4, false}, {c.ID, 3, false}, {c.ID, 2, true}, {one.ID, 1, true}} {
		m, err := st.Membership(ctx, tc.room, tc.sender)
		ok(t, err)
		if got := m.CanSend(tc.sender); got != tc.want {
			t.Fatalf("Membership(%v, %d).CanSend = %v, want %v", tc.room, tc.sender, got, tc.want)
		}
	}
}

// wantAcked is what Acknowledge(user, ids) answers when every message of
// ids is live: ids in order, without repeats and without the user's own
// messages (sender gives each message's sender).
func wantAcked(user int64, ids []uuid.UUID, sender map[uuid.UUID]int64) []uuid.UUID {
	out := []uuid.UUID{}
	seen := map[uuid.UUID]bool{}
	for _, id := range ids {
		if !seen[id] && sender[id] != user {
			out = append(out, id)
		}
		seen[id] = true
	}
	return out
}

// checkDeliveries checks, for every message of msgs, that it is delivered
// to exactly the users of want[message] (each once), and that each user of
// members has a pending notification of exactly the messages it neither
// sent nor acknowledged.
func checkDeliveries(t *testing.T, st store.Store, room uuid.UUID, members []int64, msgs []store.Message, want map[uuid.UUID]map[int64]bool) {
	t.Helper()
	for _, m := range msgs {
		v := oneView(t, st, m.ID)
		var exp []string
		for _, u := range members {
			if want[m.ID][u] {
				exp = append(exp, fmt.Sprintf("user%d", u))
			}
		}
		got := slices.Clone(v.DeliveredTo)
		slices.Sort(got)
		slices.Sort(exp)
		if !slices.Equal(got, exp) {
			t.Fatalf("message %q delivered to %v, want %v (each once)", m.Content, v.DeliveredTo, exp)
		}
	}
	for _, u := range members {
		var exp []uuid.UUID
		for _, m := range msgs {
			if m.SenderID != u && !want[m.ID][u] {
				exp = append(exp, m.ID)
			}
		}
		var got []uuid.UUID
		for _, n := range pending(t, st, u)[room] {
			got = append(got, n.Message.ID)
		}
		cmp := func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) }
		slices.SortFunc(got, cmp)
		slices.SortFunc(exp, cmp)
		if !slices.Equal(got, exp) {
			t.Fatalf("user %d has notifications of %v, want %v", u, got, exp)
		}
	}
}

// testBatchAckOverlap: many users acknowledge overlapping messages at once
// (acknowledgements written together in store/postgres), each of them
// several times, with repeats and their own messages in the lists, while
// some calls name a deleted message. Every call answers what it would
// alone: its messages in order without repeats or its own, or ErrNotFound
// and nothing written. Each message ends delivered once to each user who
// acknowledged it, and the notifications keep exactly the recipients who
// did not.
func testBatchAckOverlap(t *testing.T, st store.Store) {
	const n = 16
	us := users(t, st, n)
	members := ids(us)
	g := group(t, st, 1, members[1:]...)
	var msgs []store.Message
	sender := map[uuid.UUID]int64{}
	for i := range 6 {
		m := send(t, st, g.ID, int64(i%4+1), fmt.Sprint("m", i))
		msgs = append(msgs, m)
		sender[m.ID] = m.SenderID
	}
	gone := send(t, st, g.ID, 2, "gone")
	_, err := st.DeleteMessages(ctx, []uuid.UUID{gone.ID}, false)
	ok(t, err)
	// User u acknowledges a window of the messages, starting at u, twice at
	// once with the first message repeated, then once more; users 13-16
	// name the deleted message with theirs and must write nothing.
	lists := func(u int64) [][]uuid.UUID {
		var w []uuid.UUID
		for j := range 3 {
			w = append(w, msgs[(int(u)+j)%len(msgs)].ID)
		}
		if u > 12 {
			return [][]uuid.UUID{append(slices.Clone(w), gone.ID), {gone.ID, w[0]}}
		}
		return [][]uuid.UUID{append(slices.Clone(w), w[0]), {w[2], w[0]}, w}
	}
	var mu sync.Mutex
	var failed error
	fail := func(err error) {
		mu.Lock()
		if failed == nil {
			failed = err
		}
		mu.Unlock()
	}
	parallel(n, func(i int) {
		u := int64(i + 1)
		ls := lists(u)
		var wg sync.WaitGroup
		for _, l := range ls {
			wg.Go(func() {
				got, err := st.Acknowledge(ctx, u, l)
				if u > 12 {
					if !errors.Is(err, store.ErrNotFound) || got != nil {
						fail(fmt.Errorf("user %d acknowledging a deleted message: %v, %v; want ErrNotFound", u, got, err))
					}
					return
				}
				if err != nil {
					fail(fmt.Errorf("user %d: %w", u, err))
					return
				}
				if want := wantAcked(u, l, sender); !slices.Equal(got, want) {
					fail(fmt.Errorf("user %d acknowledged %v, got %v, want %v", u, l, got, want))
				}
			})
		}
		wg.Wait()
	})
	ok(t, failed)
	want := map[uuid.UUID]map[int64]bool{}
	for _, u := range members {
		if u > 12 {
			continue
		}
		for _, l := range lists(u) {
			for _, id := range l {
				if sender[id] != u {
					if want[id] == nil {
						want[id] = map[int64]bool{}
					}
					want[id][u] = true
				}
			}
		}
	}
	checkDeliveries(t, st, g.ID, members, msgs, want)
	// Acknowledging again answers the same and changes nothing.
	for _, u := range members[:12] {
		l := lists(u)[2]
		got, err := st.Acknowledge(ctx, u, l)
		ok(t, err)
		if w := wantAcked(u, l, sender); !slices.Equal(got, w) {
			t.Fatalf("user %d again: %v, want %v", u, got, w)
		}
	}
	checkDeliveries(t, st, g.ID, members, msgs, want)
}

// testBatchAckCancel: callers of Acknowledge give up (their context ends)
// before their call, while it is under way, or not at all. A caller
// cancelled before writes nothing; one cancelled under way gets its answer
// or the context's error, and what was written stays whole; the others
// get their answers. A retry afterwards answers what it would alone, and
// each message is delivered once to each user who acknowledged it.
func testBatchAckCancel(t *testing.T, st store.Store) {
	const n = 24
	us := users(t, st, n)
	members := ids(us)
	g := group(t, st, 1, members[1:]...)
	var msgs []store.Message
	sender := map[uuid.UUID]int64{}
	for i := range 4 {
		m := send(t, st, g.ID, int64(i+1), fmt.Sprint("m", i))
		msgs = append(msgs, m)
		sender[m.ID] = m.SenderID
	}
	all := []uuid.UUID{msgs[0].ID, msgs[1].ID, msgs[2].ID, msgs[3].ID}
	errs := make([]error, n)
	maybe := make([]bool, n) // cancelled under way and answered with the error
	parallel(n, func(i int) {
		u := int64(i + 1)
		c, cancel := context.WithCancel(ctx)
		defer cancel()
		if i%3 == 0 {
			cancel()
			_, err := st.Acknowledge(c, u, all)
			if !errors.Is(err, context.Canceled) {
				errs[i] = fmt.Errorf("user %d with a cancelled context: %v, want context.Canceled", u, err)
			}
			return
		}
		done := make(chan error, 1)
		var got []uuid.UUID
		go func() {
			var err error
			got, err = st.Acknowledge(c, u, all)
			done <- err
		}()
		if i%3 == 1 {
			cancel()
		}
		err := <-done
		switch {
		case i%3 == 1 && errors.Is(err, context.Canceled):
			maybe[i] = true
		case err != nil:
			errs[i] = fmt.Errorf("user %d: %w", u, err)
		case !slices.Equal(got, wantAcked(u, all, sender)):
			errs[i] = fmt.Errorf("user %d: acknowledged %v, want %v", u, got, wantAcked(u, all, sender))
		}
	})
	for _, err := range errs {
		ok(t, err)
	}
	// A call is all or nothing: each user's deliveries are all of its
	// messages or none, and none for a call cancelled before it began.
	want := map[uuid.UUID]map[int64]bool{}
	for _, m := range msgs {
		want[m.ID] = map[int64]bool{}
		for _, u := range oneView(t, st, m.ID).DeliveredTo {
			var id int64
			_, err := fmt.Sscanf(u, "user%d", &id)
			ok(t, err)
			want[m.ID][id] = true
		}
	}
	for i, u := range members {
		var got int
		for _, m := range msgs {
			if want[m.ID][u] {
				got++
			}
		}
		exp := len(wantAcked(u, all, sender))
		switch {
		case i%3 == 0 && got != 0:
			t.Fatalf("user %d cancelled before its call has %d deliveries", u, got)
		case i%3 == 2 || (i%3 == 1 && !maybe[i]):
			if got != exp {
				t.Fatalf("user %d answered has %d deliveries, want %d", u, got, exp)
			}
		case got != 0 && got != exp:
			t.Fatalf("user %d has %d of its %d deliveries: a call must be whole", u, got, exp)
		}
	}
	checkDeliveries(t, st, g.ID, members, msgs, want)
	for _, u := range members {
		got, err := st.Acknowledge(ctx, u, all)
		ok(t, err)
		if w := wantAcked(u, all, sender); !slices.Equal(got, w) {
			t.Fatalf("retry of user %d: %v, want %v", u, got, w)
		}
		for _, id := range got {
			want[id][u] = true
		}
	}
	checkDeliveries(t, st, g.ID, members, msgs, want)
}
