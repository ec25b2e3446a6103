package memory

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/store"
)

// SendMessage implements store.Store.
func (s *Store) SendMessage(ctx context.Context, in store.NewMessage) (store.SendResult, error) {
	if err := ctxErr(ctx); err != nil {
		return store.SendResult{}, err
	}
	in, err := store.ValidateNewMessage(in)
	if err != nil {
		return store.SendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.roomOf(in.RoomID)
	if err != nil {
		return store.SendResult{}, err
	}
	if in.CheckSender {
		switch m := r.membership(in.SenderID); {
		case !m.IsMember:
			return store.SendResult{}, store.ErrNotMember
		case !m.CanSend(in.SenderID):
			return store.SendResult{}, store.ErrCannotSend
		}
	}
	if in.ClientMsgID != "" {
		if m, ok := r.clients[clientKey{in.SenderID, in.ClientMsgID}]; ok {
			return store.SendResult{Message: copyMessage(m.m), Attachments: copyAttachments(m.attachments), Duplicate: true}, nil
		}
	}
	if _, ok := s.users[in.SenderID]; !ok && in.SenderID != 0 {
		return store.SendResult{}, store.ErrConflict
	}
	if in.ParentID != nil {
		if _, ok := s.messages[*in.ParentID]; !ok {
			return store.SendResult{}, store.Invalid("parent_message_id", "Invalid pk %q - object does not exist.", in.ParentID.String())
		}
	}
	if in.ForwardedFromID != nil {
		if _, ok := s.messages[*in.ForwardedFromID]; !ok {
			return store.SendResult{}, store.Invalid("forwarded_from_id", "Invalid pk %q - object does not exist.", in.ForwardedFromID.String())
		}
	}
	now := store.Now()
	r.r.LastSeq++
	m := &message{
		m: store.Message{
			ID: uuid.New(), RoomID: r.r.ID, Seq: r.r.LastSeq, SenderID: in.SenderID, Content: in.Content,
			ParentID: in.ParentID, ForwardedFromID: in.ForwardedFromID, IsForwarded: in.ForwardedFromID != nil,
			ClientMsgID: in.ClientMsgID, Extra: in.Extra, CreatedAt: now, UpdatedAt: now,
		},
	}
	m.m = copyMessage(m.m)
	for _, a := range in.Attachments {
		m.attachments = append(m.attachments, store.Attachment{
			ID: uuid.New(), MessageID: m.m.ID, MediaURL: a.MediaURL, MediaType: a.MediaType,
			FileSize: a.FileSize, MimeType: a.MimeType, Caption: a.Caption, Metadata: a.Metadata,
		})
	}
	s.messages[m.m.ID] = m
	r.msgs = append(r.msgs, m)
	if in.ClientMsgID != "" {
		r.clients[clientKey{in.SenderID, in.ClientMsgID}] = m
	}
	id := m.m.ID
	r.r.LastMessageID = &id
	res := store.SendResult{Message: copyMessage(m.m), Attachments: copyAttachments(m.attachments)}
	if in.Notify {
		typ := store.NotifyNewMessage
		if in.ParentID != nil {
			typ = store.NotifyReply
		}
		if n := s.notify(r, m, typ, in.SenderID, nil, now); n != nil {
			res.Notification = s.copyNotification(n)
		}
	}
	if in.Offline > 0 {
		res.Offline = s.offline(r, in.SenderID, now.Add(-in.Offline))
		if len(res.Offline) > 0 {
			res.RoomName, res.RoomType = r.r.Name, r.r.Type
		}
	}
	return res, nil
}

// offline returns the members of r other than sender who are not deleted
// and have no session seen at or after since, ordered by id
// (store.NewMessage.Offline). s.mu is held.
func (s *Store) offline(r *room, sender int64, since time.Time) []store.Recipient {
	live := map[int64]bool{}
	for _, sess := range s.sessions {
		if !sess.LastSeen.Before(since) {
			live[sess.UserID] = true
		}
	}
	var out []store.Recipient
	for id := range r.members {
		u, ok := s.users[id]
		if id == sender || live[id] || !ok || u.Deleted {
			continue
		}
		out = append(out, store.Recipient{ID: id, Username: u.Username})
	}
	slices.SortFunc(out, func(a, b store.Recipient) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// notify creates a notification for every member of r except actor; nil
// when there is nobody to notify.
func (s *Store) notify(r *room, m *message, typ store.NotificationType, actor int64, reaction *uuid.UUID, now time.Time) *notification {
	rec := map[int64]struct{}{}
	for id := range r.members {
		if id != actor {
			rec[id] = struct{}{}
		}
	}
	if len(rec) == 0 {
		return nil
	}
	n := &notification{
		n:          store.Notification{ID: uuid.New(), Type: typ, MessageID: m.m.ID, RoomID: r.r.ID, ReactionID: reaction, CreatedAt: now},
		recipients: rec,
	}
	s.notifications[n.n.ID] = n
	if m.notes == nil {
		m.notes = map[uuid.UUID]struct{}{}
	}
	m.notes[n.n.ID] = struct{}{}
	return n
}

func copyAttachments(in []store.Attachment) []store.Attachment {
	out := make([]store.Attachment, len(in))
	for i, a := range in {
		out[i] = copyAttachment(a)
	}
	return out
}

// Messages implements store.Store.
func (s *Store) Messages(ctx context.Context, ids []uuid.UUID) ([]store.Message, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []store.Message{}
	for _, id := range store.UniqueUUIDs(ids) {
		if m, ok := s.messages[id]; ok {
			out = append(out, copyMessage(m.m))
		}
	}
	return out, nil
}

// MessageViews implements store.Store.
func (s *Store) MessageViews(ctx context.Context, ids []uuid.UUID) ([]store.MessageView, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []store.MessageView{}
	cache := map[uuid.UUID]*store.MessageView{}
	for _, id := range store.UniqueUUIDs(ids) {
		if v := s.view(id, cache); v != nil {
			out = append(out, *v)
		}
	}
	return out, nil
}

// view builds the wire view of a message; nil when it does not exist.
// Nested views are shared through cache within one call.
func (s *Store) view(id uuid.UUID, cache map[uuid.UUID]*store.MessageView) *store.MessageView {
	if v, ok := cache[id]; ok {
		return v
	}
	m, ok := s.messages[id]
	if !ok {
		return nil
	}
	v := &store.MessageView{
		Message:      copyMessage(m.m),
		Sender:       s.user(m.m.SenderID),
		DeliveredTo:  []string{},
		ReadReceipts: []store.ReadReceiptView{},
		Reactions:    []store.ReactionView{},
		Attachments:  copyAttachments(m.attachments),
	}
	cache[id] = v
	for _, uid := range store.SortedInt64(slices.Collect(maps.Keys(m.delivered))) {
		v.DeliveredTo = append(v.DeliveredTo, s.user(uid).Username)
	}
	for _, rr := range m.receipts {
		v.ReadReceipts = append(v.ReadReceipts, store.ReadReceiptView{ReadReceipt: rr, Reader: s.user(rr.ReaderID)})
	}
	slices.SortFunc(v.ReadReceipts, func(a, b store.ReadReceiptView) int {
		if c := a.ReadAt.Compare(b.ReadAt); c != 0 {
			return c
		}
		return uuidLess(a.ID, b.ID)
	})
	for _, re := range m.reactions {
		v.Reactions = append(v.Reactions, store.ReactionView{Reaction: re, User: s.user(re.UserID)})
	}
	slices.SortFunc(v.Reactions, func(a, b store.ReactionView) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return uuidLess(a.ID, b.ID)
	})
	if m.m.ParentID != nil {
		v.Parent = s.view(*m.m.ParentID, cache)
	}
	if m.m.ForwardedFromID != nil {
		v.ForwardedFrom = s.view(*m.m.ForwardedFromID, cache)
	}
	return v
}

func (s *Store) views(ms []*message) []store.MessageView {
	cache := map[uuid.UUID]*store.MessageView{}
	out := make([]store.MessageView, 0, len(ms))
	for _, m := range ms {
		out = append(out, *s.view(m.m.ID, cache))
	}
	return out
}

// visible returns r's not-deleted messages, newest first.
func (r *room) visibleDesc() []*message {
	out := make([]*message, 0, len(r.msgs))
	for i := len(r.msgs) - 1; i >= 0; i-- {
		if !r.msgs[i].m.IsDeleted {
			out = append(out, r.msgs[i])
		}
	}
	return out
}

// MessagesPage implements store.Store.
func (s *Store) MessagesPage(ctx context.Context, roomID uuid.UUID, page, size int) (store.MessagePage, error) {
	if err := ctxErr(ctx); err != nil {
		return store.MessagePage{}, err
	}
	if size < 0 {
		return store.MessagePage{}, store.Invalid("size", "Ensure this value is greater than or equal to 1.")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, err := s.roomOf(roomID)
	if err != nil {
		return store.MessagePage{}, err
	}
	all := r.visibleDesc()
	p := store.Paginate(len(all), page, size)
	lo, hi := p.Bounds()
	p.Messages = s.views(all[lo:hi])
	return p, nil
}

// MessagesAfter implements store.Store.
func (s *Store) MessagesAfter(ctx context.Context, roomID uuid.UUID, afterSeq int64, limit int) ([]store.MessageView, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	if limit < 1 {
		return nil, store.Invalid("limit", "Ensure this value is greater than or equal to 1.")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, err := s.roomOf(roomID)
	if err != nil {
		return nil, err
	}
	var sel []*message
	for _, m := range r.msgs {
		if len(sel) == limit {
			break
		}
		if m.m.Seq > afterSeq && !m.m.IsDeleted {
			sel = append(sel, m)
		}
	}
	return s.views(sel), nil
}

// MessagesBefore implements store.Store.
func (s *Store) MessagesBefore(ctx context.Context, roomID uuid.UUID, beforeSeq int64, limit int) ([]store.MessageView, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	if limit < 1 {
		return nil, store.Invalid("limit", "Ensure this value is greater than or equal to 1.")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, err := s.roomOf(roomID)
	if err != nil {
		return nil, err
	}
	var sel []*message
	for i := len(r.msgs) - 1; i >= 0 && len(sel) < limit; i-- {
		m := r.msgs[i]
		if m.m.Seq < beforeSeq && !m.m.IsDeleted {
			sel = append(sel, m)
		}
	}
	return s.views(sel), nil
}

// EditMessage implements store.Store.
func (s *Store) EditMessage(ctx context.Context, messageID uuid.UUID, content string, extra store.JSON) (store.Message, error) {
	if err := store.ValidateText("content", content); err != nil {
		return store.Message{}, err
	}
	if err := ctxErr(ctx); err != nil {
		return store.Message{}, err
	}
	var err error
	if extra != nil {
		if extra, err = extra.Clone("extra_fields"); err != nil {
			return store.Message{}, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[messageID]
	if !ok || m.m.IsDeleted {
		return store.Message{}, store.ErrNotFound
	}
	m.m.Content = content
	m.m.IsEdited = true
	if extra != nil {
		merged := m.m.Extra.MustClone()
		maps.Copy(merged, extra)
		m.m.Extra = merged
	}
	m.m.UpdatedAt = store.Now()
	return copyMessage(m.m), nil
}

// DeleteMessages implements store.Store.
func (s *Store) DeleteMessages(ctx context.Context, ids []uuid.UUID, hard bool) ([]uuid.UUID, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	deleted := []uuid.UUID{}
	rooms := map[uuid.UUID]*room{}
	gone := map[uuid.UUID]struct{}{}
	now := store.Now()
	for _, id := range store.UniqueUUIDs(ids) {
		m, ok := s.messages[id]
		if !ok || (!hard && m.m.IsDeleted) {
			continue
		}
		deleted = append(deleted, id)
		r := s.rooms[m.m.RoomID]
		rooms[r.r.ID] = r
		for nid := range m.notes {
			delete(s.notifications, nid)
		}
		m.notes = nil
		if !hard {
			m.m.IsDeleted = true
			m.m.UpdatedAt = now
			continue
		}
		gone[id] = struct{}{}
		s.dropMessage(m)
		if m.m.ClientMsgID != "" {
			delete(r.clients, clientKey{m.m.SenderID, m.m.ClientMsgID})
		}
	}
	for _, r := range rooms {
		if hard {
			r.msgs = slices.DeleteFunc(r.msgs, func(m *message) bool { _, ok := gone[m.m.ID]; return ok })
		}
		r.refreshLast()
	}
	s.nullReferences(gone)
	return deleted, nil
}

// liveMessages resolves ids (deduplicated) to not-deleted messages, or
// ErrNotFound when any is missing or soft-deleted.
func (s *Store) liveMessages(ids []uuid.UUID) ([]*message, error) {
	out := make([]*message, 0, len(ids))
	for _, id := range store.UniqueUUIDs(ids) {
		m, ok := s.messages[id]
		if !ok || m.m.IsDeleted {
			return nil, store.ErrNotFound
		}
		out = append(out, m)
	}
	return out, nil
}

// Acknowledge implements store.Store.
func (s *Store) Acknowledge(ctx context.Context, userID int64, messageIDs []uuid.UUID) ([]uuid.UUID, error) {
	acked := []uuid.UUID{}
	err := s.eachReceived(ctx, userID, messageIDs, func(m *message) {
		acked = append(acked, m.m.ID)
		if m.delivered == nil {
			m.delivered = map[int64]struct{}{}
		}
		m.delivered[userID] = struct{}{}
		for nid := range m.notes {
			n := s.notifications[nid]
			delete(n.recipients, userID)
			if len(n.recipients) == 0 {
				delete(s.notifications, nid)
				delete(m.notes, nid)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return acked, nil
}

// MarkRead implements store.Store.
func (s *Store) MarkRead(ctx context.Context, readerID int64, messageIDs []uuid.UUID) ([]store.ReadReceipt, error) {
	var now time.Time // taken under the lock, as the receipts are ordered by it
	out := []store.ReadReceipt{}
	err := s.eachReceived(ctx, readerID, messageIDs, func(m *message) {
		if _, ok := m.receipts[readerID]; ok {
			return
		}
		if now.IsZero() {
			now = store.Now()
		}
		rr := store.ReadReceipt{ID: uuid.New(), MessageID: m.m.ID, ReaderID: readerID, ReadAt: now}
		if m.receipts == nil {
			m.receipts = map[int64]store.ReadReceipt{}
		}
		m.receipts[readerID] = rr
		out = append(out, rr)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachReceived is Acknowledge and MarkRead: under the write lock, it
// resolves ids to visible messages (any missing or soft-deleted one is
// ErrNotFound and nothing changes), checks that userID is a user
// (ErrConflict), and calls fn for each message, in input order, that
// userID did not send.
func (s *Store) eachReceived(ctx context.Context, userID int64, ids []uuid.UUID, fn func(*message)) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ms, err := s.liveMessages(ids)
	if err != nil {
		return err
	}
	if _, ok := s.users[userID]; !ok {
		return store.ErrConflict
	}
	for _, m := range ms {
		if m.m.SenderID != userID {
			fn(m)
		}
	}
	return nil
}

// AddReaction implements store.Store.
func (s *Store) AddReaction(ctx context.Context, in store.NewReaction) (store.Reaction, error) {
	if err := ctxErr(ctx); err != nil {
		return store.Reaction{}, err
	}
	if err := store.ValidateReaction(in.Content); err != nil {
		return store.Reaction{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[in.MessageID]
	if !ok || m.m.IsDeleted {
		return store.Reaction{}, store.ErrNotFound
	}
	if _, ok := s.users[in.UserID]; !ok {
		return store.Reaction{}, store.ErrConflict
	}
	if old, ok := m.reactions[in.UserID]; ok {
		if old.Content == in.Content {
			return store.Reaction{}, store.ErrConflict
		}
		s.dropReaction(m, old)
	}
	now := store.Now()
	re := store.Reaction{ID: uuid.New(), MessageID: m.m.ID, UserID: in.UserID, Content: in.Content, CreatedAt: now}
	if m.reactions == nil {
		m.reactions = map[int64]store.Reaction{}
	}
	m.reactions[in.UserID] = re
	if in.Notify {
		rid := re.ID
		s.notify(s.rooms[m.m.RoomID], m, store.NotifyReaction, in.UserID, &rid, now)
	}
	return re, nil
}

// dropReaction deletes a reaction and its notification.
func (s *Store) dropReaction(m *message, re store.Reaction) {
	delete(m.reactions, re.UserID)
	for nid := range m.notes {
		n := s.notifications[nid]
		if n.n.ReactionID != nil && *n.n.ReactionID == re.ID {
			delete(s.notifications, nid)
			delete(m.notes, nid)
		}
	}
}

// RemoveReaction implements store.Store.
func (s *Store) RemoveReaction(ctx context.Context, messageID uuid.UUID, userID int64) (bool, error) {
	if err := ctxErr(ctx); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[messageID]
	if !ok || m.m.IsDeleted {
		return false, store.ErrNotFound
	}
	re, ok := m.reactions[userID]
	if !ok {
		return false, nil
	}
	s.dropReaction(m, re)
	return true, nil
}

// PendingNotifications implements store.Store.
func (s *Store) PendingNotifications(ctx context.Context, userID int64) ([]store.RoomNotifications, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var mine []*notification
	for _, n := range s.notifications {
		if _, ok := n.recipients[userID]; ok {
			mine = append(mine, n)
		}
	}
	// Newest message first; ties by seq, then notification time and id.
	slices.SortFunc(mine, func(a, b *notification) int {
		ma, mb := s.messages[a.n.MessageID].m, s.messages[b.n.MessageID].m
		if c := mb.CreatedAt.Compare(ma.CreatedAt); c != 0 {
			return c
		}
		if c := cmpInt64(mb.Seq, ma.Seq); c != 0 {
			return c
		}
		if c := b.n.CreatedAt.Compare(a.n.CreatedAt); c != 0 {
			return c
		}
		return uuidLess(b.n.ID, a.n.ID)
	})
	cache := map[uuid.UUID]*store.MessageView{}
	out := []store.RoomNotifications{}
	index := map[uuid.UUID]int{}
	for _, n := range mine {
		i, ok := index[n.n.RoomID]
		if !ok {
			i = len(out)
			index[n.n.RoomID] = i
			out = append(out, store.RoomNotifications{RoomID: n.n.RoomID})
		}
		out[i].Notifications = append(out[i].Notifications, store.NotificationView{
			ID: n.n.ID, Type: n.n.Type, Message: *s.view(n.n.MessageID, cache),
		})
	}
	return out, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
