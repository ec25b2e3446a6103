package chat

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/store"
)

// DefaultStoreTimeout is the default of Config.StoreTimeout.
const DefaultStoreTimeout = 5 * time.Second

// errStoreTimeout is the cause of a store call that did not return within
// Config.StoreTimeout; it wraps context.DeadlineExceeded.
var errStoreTimeout = fmt.Errorf("failed to get an answer from the store in time: %w", context.DeadlineExceeded)

// maxStuckCalls bounds the store calls that went past their deadline and
// still run in the background (a store whose connections hang): past it,
// bounded fails at once instead of starting another.
const maxStuckCalls = 1024

// stuckCalls counts the calls of bounded whose caller gave up while they
// still run.
var stuckCalls atomic.Int64

// bounded runs f under a deadline d after which the caller gets its answer
// whether f has returned or not: the caller's context gets the deadline,
// and when f does not return by then (a store whose connection hangs,
// which no context reaches) it goes on in the background and its result is
// dropped. At most maxStuckCalls such calls run at once: past that, bounded
// fails at once. A call that ends in an error because of the deadline
// returns an error wrapping context.DeadlineExceeded (StoreError: 4013).
// d <= 0 runs f as is.
func bounded[T any](ctx context.Context, d time.Duration, f func(context.Context) (T, error)) (T, error) {
	if d <= 0 {
		return f(ctx)
	}
	var zero T
	if stuckCalls.Load() >= maxStuckCalls {
		return zero, errStoreTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	// state: 0 running, 1 returned, 2 given up by the caller.
	var state atomic.Int32
	go func() {
		v, err := f(ctx)
		done <- result{v, err}
		if !state.CompareAndSwap(0, 1) {
			stuckCalls.Add(-1)
		}
	}()
	select {
	case r := <-done:
		if r.err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && !errors.Is(r.err, context.DeadlineExceeded) {
			r.err = fmt.Errorf("%w: %w", errStoreTimeout, r.err)
		}
		cancel()
		return r.v, r.err
	case <-ctx.Done():
		err := ctx.Err()
		cancel()
		if state.CompareAndSwap(0, 2) {
			stuckCalls.Add(1)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return zero, errStoreTimeout
		}
		return zero, err
	}
}

// boundedStore is a store.Store whose every call runs under bounded:
// Config.StoreTimeout bounds each store call of a handler
// (docs/protocol.md#faults).
type boundedStore struct {
	st store.Store
	d  time.Duration
}

var _ store.Store = (*boundedStore)(nil)

// exec is bounded for the calls that return only an error.
func (b *boundedStore) exec(ctx context.Context, f func(context.Context) error) error {
	_, err := bounded(ctx, b.d, func(ctx context.Context) (struct{}, error) { return struct{}{}, f(ctx) })
	return err
}

// Acknowledge implements store.Store under the deadline.
func (b *boundedStore) Acknowledge(ctx context.Context, userID int64, messageIDs []uuid.UUID) ([]uuid.UUID, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]uuid.UUID, error) { return b.st.Acknowledge(ctx, userID, messageIDs) })
}

// AddMembers implements store.Store under the deadline.
func (b *boundedStore) AddMembers(ctx context.Context, roomID uuid.UUID, userIDs []int64) ([]int64, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]int64, error) { return b.st.AddMembers(ctx, roomID, userIDs) })
}

// AddReaction implements store.Store under the deadline.
func (b *boundedStore) AddReaction(ctx context.Context, r store.NewReaction) (store.Reaction, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (store.Reaction, error) { return b.st.AddReaction(ctx, r) })
}

// CloseSession implements store.Store under the deadline.
func (b *boundedStore) CloseSession(ctx context.Context, sessionID int64) error {
	return b.exec(ctx, func(ctx context.Context) error { return b.st.CloseSession(ctx, sessionID) })
}

// CreateRoom implements store.Store under the deadline.
func (b *boundedStore) CreateRoom(ctx context.Context, r store.NewRoom) (store.Room, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (store.Room, error) { return b.st.CreateRoom(ctx, r) })
}

// CreateSession implements store.Store under the deadline.
func (b *boundedStore) CreateSession(ctx context.Context, ns store.NewSession) (store.Session, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (store.Session, error) { return b.st.CreateSession(ctx, ns) })
}

// CreateUserByUsername implements store.Store under the deadline.
func (b *boundedStore) CreateUserByUsername(ctx context.Context, username string) (store.User, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (store.User, error) { return b.st.CreateUserByUsername(ctx, username) })
}

// DeleteUser implements store.Store under the deadline.
func (b *boundedStore) DeleteUser(ctx context.Context, userID int64) (store.UserDeletion, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (store.UserDeletion, error) { return b.st.DeleteUser(ctx, userID) })
}

// DeleteMessages implements store.Store under the deadline.
func (b *boundedStore) DeleteMessages(ctx context.Context, ids []uuid.UUID, hard bool) ([]uuid.UUID, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]uuid.UUID, error) { return b.st.DeleteMessages(ctx, ids, hard) })
}

// DeleteRoom implements store.Store under the deadline.
func (b *boundedStore) DeleteRoom(ctx context.Context, roomID uuid.UUID) error {
	return b.exec(ctx, func(ctx context.Context) error { return b.st.DeleteRoom(ctx, roomID) })
}

// EditMessage implements store.Store under the deadline.
func (b *boundedStore) EditMessage(ctx context.Context, messageID uuid.UUID, content string, extra store.JSON) (store.Message, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (store.Message, error) {
		return b.st.EditMessage(ctx, messageID, content, extra)
	})
}

// ExpireNodes implements store.Store under the deadline.
func (b *boundedStore) ExpireNodes(ctx context.Context, maxAge time.Duration) (int, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (int, error) { return b.st.ExpireNodes(ctx, maxAge) })
}

// LastSeen implements store.Store under the deadline.
func (b *boundedStore) LastSeen(ctx context.Context, userIDs []int64) (map[int64]time.Time, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (map[int64]time.Time, error) { return b.st.LastSeen(ctx, userIDs) })
}

// ListRooms implements store.Store under the deadline.
func (b *boundedStore) ListRooms(ctx context.Context, userID int64) ([]store.RoomListItem, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]store.RoomListItem, error) { return b.st.ListRooms(ctx, userID) })
}

// MarkRead implements store.Store under the deadline.
func (b *boundedStore) MarkRead(ctx context.Context, readerID int64, messageIDs []uuid.UUID) ([]store.ReadReceipt, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]store.ReadReceipt, error) {
		return b.st.MarkRead(ctx, readerID, messageIDs)
	})
}

// Membership implements store.Store under the deadline.
func (b *boundedStore) Membership(ctx context.Context, roomID uuid.UUID, userID int64) (store.Membership, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (store.Membership, error) { return b.st.Membership(ctx, roomID, userID) })
}

// Memberships implements store.Store under the deadline.
func (b *boundedStore) Memberships(ctx context.Context, roomIDs []uuid.UUID, userID int64) (map[uuid.UUID]store.Membership, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (map[uuid.UUID]store.Membership, error) {
		return b.st.Memberships(ctx, roomIDs, userID)
	})
}

// MessageViews implements store.Store under the deadline.
func (b *boundedStore) MessageViews(ctx context.Context, ids []uuid.UUID) ([]store.MessageView, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]store.MessageView, error) { return b.st.MessageViews(ctx, ids) })
}

// Messages implements store.Store under the deadline.
func (b *boundedStore) Messages(ctx context.Context, ids []uuid.UUID) ([]store.Message, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]store.Message, error) { return b.st.Messages(ctx, ids) })
}

// MessagesAfter implements store.Store under the deadline.
func (b *boundedStore) MessagesAfter(ctx context.Context, roomID uuid.UUID, afterSeq int64, limit int) ([]store.MessageView, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]store.MessageView, error) {
		return b.st.MessagesAfter(ctx, roomID, afterSeq, limit)
	})
}

// MessagesBefore implements store.Store under the deadline.
func (b *boundedStore) MessagesBefore(ctx context.Context, roomID uuid.UUID, beforeSeq int64, limit int) ([]store.MessageView, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]store.MessageView, error) {
		return b.st.MessagesBefore(ctx, roomID, beforeSeq, limit)
	})
}

// MessagesPage implements store.Store under the deadline.
func (b *boundedStore) MessagesPage(ctx context.Context, roomID uuid.UUID, page, size int) (store.MessagePage, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (store.MessagePage, error) {
		return b.st.MessagesPage(ctx, roomID, page, size)
	})
}

// PendingNotifications implements store.Store under the deadline.
func (b *boundedStore) PendingNotifications(ctx context.Context, userID int64) ([]store.RoomNotifications, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]store.RoomNotifications, error) {
		return b.st.PendingNotifications(ctx, userID)
	})
}

// RemoveMembers implements store.Store under the deadline.
func (b *boundedStore) RemoveMembers(ctx context.Context, rm store.RemoveMembers) (store.RemoveResult, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (store.RemoveResult, error) { return b.st.RemoveMembers(ctx, rm) })
}

// RemoveNode implements store.Store under the deadline.
func (b *boundedStore) RemoveNode(ctx context.Context, nodeID string) (int, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (int, error) { return b.st.RemoveNode(ctx, nodeID) })
}

// RemoveReaction implements store.Store under the deadline.
func (b *boundedStore) RemoveReaction(ctx context.Context, messageID uuid.UUID, userID int64) (bool, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (bool, error) { return b.st.RemoveReaction(ctx, messageID, userID) })
}

// Room implements store.Store under the deadline.
func (b *boundedStore) Room(ctx context.Context, roomID uuid.UUID) (store.Room, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (store.Room, error) { return b.st.Room(ctx, roomID) })
}

// RoomDetail implements store.Store under the deadline.
func (b *boundedStore) RoomDetail(ctx context.Context, roomID uuid.UUID) (store.RoomDetail, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (store.RoomDetail, error) { return b.st.RoomDetail(ctx, roomID) })
}

// RoomMemberIDs implements store.Store under the deadline.
func (b *boundedStore) RoomMemberIDs(ctx context.Context, roomID uuid.UUID) ([]int64, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]int64, error) { return b.st.RoomMemberIDs(ctx, roomID) })
}

// SendMessage implements store.Store under the deadline.
func (b *boundedStore) SendMessage(ctx context.Context, m store.NewMessage) (store.SendResult, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (store.SendResult, error) { return b.st.SendMessage(ctx, m) })
}

// SetPermissions implements store.Store under the deadline.
func (b *boundedStore) SetPermissions(ctx context.Context, roomID uuid.UUID, userIDs []int64, perms []store.Permission, on bool) ([]int64, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]int64, error) {
		return b.st.SetPermissions(ctx, roomID, userIDs, perms, on)
	})
}

// SetRole implements store.Store under the deadline.
func (b *boundedStore) SetRole(ctx context.Context, roomID uuid.UUID, userIDs []int64, on bool) ([]int64, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]int64, error) { return b.st.SetRole(ctx, roomID, userIDs, on) })
}

// TouchNode implements store.Store under the deadline.
func (b *boundedStore) TouchNode(ctx context.Context, nodeID string) error {
	return b.exec(ctx, func(ctx context.Context) error { return b.st.TouchNode(ctx, nodeID) })
}

// TouchSession implements store.Store under the deadline.
func (b *boundedStore) TouchSession(ctx context.Context, sessionID int64) (time.Time, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (time.Time, error) { return b.st.TouchSession(ctx, sessionID) })
}

// UpdateRoom implements store.Store under the deadline.
func (b *boundedStore) UpdateRoom(ctx context.Context, roomID uuid.UUID, up store.RoomUpdate) (store.Room, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (store.Room, error) { return b.st.UpdateRoom(ctx, roomID, up) })
}

// UpsertUser implements store.Store under the deadline.
func (b *boundedStore) UpsertUser(ctx context.Context, u store.User) (store.User, error) {
	return bounded(ctx, b.d, func(ctx context.Context) (store.User, error) { return b.st.UpsertUser(ctx, u) })
}

// UserRoomIDs implements store.Store under the deadline.
func (b *boundedStore) UserRoomIDs(ctx context.Context, userID int64) ([]uuid.UUID, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]uuid.UUID, error) { return b.st.UserRoomIDs(ctx, userID) })
}

// UserRoomSeqs implements store.Store under the deadline.
func (b *boundedStore) UserRoomSeqs(ctx context.Context, userID int64) ([]store.RoomSeq, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]store.RoomSeq, error) { return b.st.UserRoomSeqs(ctx, userID) })
}

// UserSessions implements store.Store under the deadline.
func (b *boundedStore) UserSessions(ctx context.Context, userID int64) ([]store.Session, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]store.Session, error) { return b.st.UserSessions(ctx, userID) })
}

// Users implements store.Store under the deadline.
func (b *boundedStore) Users(ctx context.Context, ids []int64) ([]store.User, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]store.User, error) { return b.st.Users(ctx, ids) })
}

// SearchUsers implements store.Store under the deadline.
func (b *boundedStore) SearchUsers(ctx context.Context, prefix string, exceptID int64, limit int) ([]store.User, error) {
	return bounded(ctx, b.d, func(ctx context.Context) ([]store.User, error) {
		return b.st.SearchUsers(ctx, prefix, exceptID, limit)
	})
}
