package chat

import (
	"errors"
	"strings"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/groups"
)

// DispatchResync is the dispatch that tells a connection which rooms it
// belongs to after a broker outage, with each room's latest seq
// (docs/protocol.md#resync).
const DispatchResync = "chat.resync"

// ResyncReasonBroker is the reason of a chat.resync sent after the node's
// broker connection was lost and is back.
const ResyncReasonBroker = "broker"

type resyncRoom struct {
	RoomID string `json:"room_id"`
	Seq    int64  `json:"seq"`
}

type resyncPayload struct {
	Rooms  []resyncRoom `json:"rooms"`
	Reason string       `json:"reason"`
}

// handleResync handles $resync, which the server routes to each of its
// connections after the node's broker connection was lost and is back
// (while it was away the connection received no room dispatches, and
// membership changes made on other nodes did not reach it). It re-reads the
// user's rooms from the store and fixes the connection's room groups
// (leaving the rooms it was removed from, joining those it was added to),
// reading again until two reads agree (a change committed meanwhile may
// have raced with the fix), lets the connection receive group dispatches
// again (Conn.Resume), then reads each room's latest seq and sends
// chat.resync {rooms: [{room_id, seq}], reason: "broker"} to this socket:
// the client catches up every listed room whose seq is above the last it
// has, and drops the rooms not listed (docs/protocol.md#resync). Three
// queries when nothing changes meanwhile.
//
// When the store or the broker fails meanwhile, the connection is closed
// with 1013 (try again later) rather than resumed with memberships that
// may be stale: the client reconnects, and its $connect reads them afresh.
func (s *Service) handleResync(c *chatmux.Context) error {
	u := c.User()
	if c.Conn() == nil {
		return nil
	}
	if u == nil {
		// An anonymous connection belongs to no room: nothing to fix.
		c.Conn().Resume()
		return nil
	}
	ctx := c.Context()
	rooms, err := s.st.UserRoomIDs(ctx, u.ID)
	if err != nil {
		return s.resyncFailed(c, StoreError(err))
	}
	for attempt := 1; ; attempt++ {
		if err := setRoomGroups(c, rooms); err != nil {
			return s.resyncFailed(c, err)
		}
		// A membership change committed after the read may have moved
		// the connection before setRoomGroups moved it back: then the
		// next read differs, and the groups are set again from it. Once
		// two reads agree, every later change reaches the connection
		// after setRoomGroups, by its own move.
		again, err := s.st.UserRoomIDs(ctx, u.ID)
		if err != nil {
			return s.resyncFailed(c, StoreError(err))
		}
		if sameRooms(again, rooms) {
			break
		}
		if attempt == maxResyncReads {
			return s.resyncFailed(c, errors.New("the user's rooms kept changing"))
		}
		rooms = again
	}
	// From here on the connection receives its rooms' dispatches again;
	// the seqs read next are at least those of the messages it missed.
	c.Conn().Resume()
	seqs, err := s.st.UserRoomSeqs(ctx, u.ID)
	if err != nil {
		return s.resyncFailed(c, StoreError(err))
	}
	out := resyncPayload{Rooms: make([]resyncRoom, len(seqs)), Reason: ResyncReasonBroker}
	for i, r := range seqs {
		out.Rooms[i] = resyncRoom{RoomID: r.RoomID.String(), Seq: r.Seq}
	}
	return send(c, DispatchResync, out)
}

// maxResyncReads bounds the reads of a user's rooms in one resync.
const maxResyncReads = 4

// sameRooms reports whether a and b list the same rooms, in any order.
func sameRooms(a, b []uuid.UUID) bool {
	if len(a) != len(b) {
		return false
	}
	in := make(map[uuid.UUID]bool, len(a))
	for _, id := range a {
		in[id] = true
	}
	for _, id := range b {
		if !in[id] {
			return false
		}
	}
	return true
}

// setRoomGroups makes the connection's room groups those of rooms: it
// leaves every other room group and joins the missing ones.
func setRoomGroups(c *chatmux.Context, rooms []uuid.UUID) error {
	member := make(map[uuid.UUID]bool, len(rooms))
	for _, id := range rooms {
		member[id] = true
	}
	for _, g := range c.Conn().Groups() {
		if id, ok := roomOfGroup(g); ok && !member[id] {
			if err := c.Leave(g); err != nil {
				return brokerError(err)
			}
		}
	}
	for _, id := range rooms {
		if err := c.Join(RoomGroup(id)); err != nil {
			return brokerError(err)
		}
	}
	return nil
}

// resyncFailed logs why a connection could not be resynchronised and
// closes it with 1013 (try again later).
func (s *Service) resyncFailed(c *chatmux.Context, err error) error {
	s.log.WarnContext(c.Context(), "chat: failed to resynchronise a connection; closing it", "conn", c.Conn().ID(), "err", err)
	c.Conn().Close(int(websocket.StatusTryAgainLater), "try again later")
	return nil
}

// roomOfGroup returns the room of a room group ("group-<uuid>").
func roomOfGroup(group string) (uuid.UUID, bool) {
	rest, ok := strings.CutPrefix(group, groups.Room(""))
	if !ok {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(rest)
	return id, err == nil
}
