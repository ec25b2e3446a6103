package chat

import (
	"strings"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/groups"
)

// eventResync is the reserved event the server routes to every connection
// of a node whose broker connection came back (docs/protocol.md#resync).
// It is a local stand-in for chatmux.EventResync, to be replaced by it.
const eventResync = "$resync"

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

// Resync handles $resync, which the server routes to each of its
// connections after the node's broker connection was lost and is back
// (while it was away the connection received no room dispatches, and
// membership changes made on other nodes did not reach it). It re-reads the
// user's rooms from the store and fixes the connection's room groups
// (leaving the rooms it was removed from, joining those it was added to),
// lets the connection receive group dispatches again (Conn.Resume), then
// reads each room's latest seq and sends chat.resync {rooms: [{room_id,
// seq}], reason: "broker"} to this socket: the client catches up every
// listed room whose seq is above the last it has, and drops the rooms not
// listed (docs/protocol.md#resync).
//
// When the store or the broker fails meanwhile, the connection is closed
// with 1013 (try again later) rather than resumed with memberships that
// may be stale: the client reconnects, and its $connect reads them afresh.
func (s *Service) Resync(c *chatmux.Context) error {
	u := c.User()
	if u == nil || c.Conn() == nil {
		resume(c)
		return nil
	}
	ctx := c.Context()
	rooms, err := s.st.UserRoomIDs(ctx, u.ID)
	if err != nil {
		return s.resyncFailed(c, StoreError(err))
	}
	member := make(map[uuid.UUID]bool, len(rooms))
	for _, id := range rooms {
		member[id] = true
	}
	for _, g := range c.Conn().Groups() {
		id, ok := roomOfGroup(g)
		if ok && !member[id] {
			if err := c.Leave(g); err != nil {
				return s.resyncFailed(c, brokerError(err))
			}
		}
	}
	for _, id := range rooms {
		if err := c.Join(RoomGroup(id)); err != nil {
			return s.resyncFailed(c, brokerError(err))
		}
	}
	// From here on the connection receives its rooms' dispatches again;
	// the seqs read next are at least those of the messages it missed.
	resume(c)
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

// resume lets the connection receive group dispatches again after a broker
// outage (chatmux's Conn.Resume). It is a local stand-in, to be replaced by
// c.Conn().Resume(), that does nothing on a server without stale
// connections.
func resume(c *chatmux.Context) {
	if r, ok := any(c.Conn()).(interface{ Resume() }); ok {
		r.Resume()
	}
}
