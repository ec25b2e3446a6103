package chat

import (
	"encoding/json"
	"math"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

type messagesData struct {
	RoomID   string         `json:"room_id"`
	Messages []*wireMessage `json:"messages"`
}

// RoomMessages handles room.messages: data {room_id, paginate?: {page,
// size}} (docs/protocol.md#pagination, docs/protocol.md#diff-pagination),
// or {room_id, after_seq | before_seq, limit?} (docs/protocol.md#catch-up).
// Members only; roommessages.dispatch goes to all the user's
// devices. Without paginate every visible message comes, newest first;
// with it, one page of at most Config.MaxPageSize, with the effective page
// echoed. after_seq returns the messages after a seq, oldest first;
// before_seq those before it, newest first; both with has_more.
func (s *Service) RoomMessages(c *chatmux.Context) error {
	u, f, roomID, _, err := s.memberEvent(c)
	if err != nil {
		return err
	}
	if f.get("after_seq") != nil || f.get("before_seq") != nil {
		return s.messagesBySeq(c, u.ID, roomID, f)
	}
	page, size, paginated, err := s.paginate(f.get("paginate"))
	if err != nil {
		return err
	}
	p, err := s.st.MessagesPage(c.Context(), roomID, page, size)
	if err != nil {
		return StoreError(err)
	}
	data := messagesData{RoomID: roomID.String(), Messages: s.viewsJSON(p.Messages)}
	if !paginated {
		return s.sendUser(c, u.ID, DispatchRoomMessages, struct {
			Data messagesData `json:"data"`
		}{data})
	}
	return s.sendUser(c, u.ID, DispatchRoomMessages, struct {
		HasNext     bool         `json:"has_next"`
		HasPrevious bool         `json:"has_previous"`
		NextPage    *int         `json:"next_page_number"`
		PrevPage    *int         `json:"prev_page_number"`
		Page        int          `json:"page"`
		Size        int          `json:"size"`
		Data        messagesData `json:"data"`
	}{p.HasNext, p.HasPrevious, pageNumber(p.NextPage()), pageNumber(p.PreviousPage()), p.Page, p.Size, data})
}

func pageNumber(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

func (s *Service) viewsJSON(views []store.MessageView) []*wireMessage {
	out := make([]*wireMessage, len(views))
	for i := range views {
		out[i] = s.messageJSON(&views[i])
	}
	return out
}

// paginate reads room.messages' paginate object. No paginate, a non-object
// or an empty object means every message (paginated false).
func (s *Service) paginate(v json.RawMessage) (page, size int, paginated bool, err error) {
	var p fields
	if jsonKind(v) != 'o' || json.Unmarshal(v, &p) != nil || len(p) == 0 {
		return 0, 0, false, nil
	}
	pv, sv := p.get("page"), p.get("size")
	if !truthy(pv) || !truthy(sv) {
		return 0, 0, false, chatmux.Validation(msgPageAndSize)
	}
	pg, ok1 := pyInt(pv)
	sz, ok2 := pyInt(sv)
	if !ok1 || !ok2 {
		return 0, 0, false, chatmux.Validation(msgInvalidTypes)
	}
	if pg == 0 || sz == 0 {
		return 0, 0, false, chatmux.Validation(msgPageAndSize)
	}
	if sz < 0 {
		return 0, 0, false, chatmux.FieldError("size", msgMinOne)
	}
	sz = min(sz, int64(s.cfg.MaxPageSize))
	if pg > math.MaxInt32 || pg < math.MinInt32 {
		pg = -1 // out of range: the last page
	}
	return int(pg), int(sz), true, nil
}

// messagesBySeq answers room.messages with after_seq or before_seq.
func (s *Service) messagesBySeq(c *chatmux.Context, userID int64, roomID uuid.UUID, f fields) error {
	if f.get("after_seq") != nil && f.get("before_seq") != nil {
		return chatmux.Validation("Give after_seq or before_seq, not both")
	}
	key := "after_seq"
	if f.get("after_seq") == nil {
		key = "before_seq"
	}
	seq, ok := ParseUserID(f.get(key))
	if !ok || seq < 0 {
		return chatmux.FieldError(key, msgNotInt)
	}
	limit, err := f.limit(int64(s.cfg.MaxPageSize), int64(s.cfg.MaxPageSize))
	if err != nil {
		return err
	}
	var views []store.MessageView
	if key == "after_seq" {
		views, err = s.st.MessagesAfter(c.Context(), roomID, seq, int(limit)+1)
	} else {
		views, err = s.st.MessagesBefore(c.Context(), roomID, seq, int(limit)+1)
	}
	if err != nil {
		return StoreError(err)
	}
	more := len(views) > int(limit)
	if more {
		views = views[:limit]
	}
	out := map[string]any{
		"data":     messagesData{RoomID: roomID.String(), Messages: s.viewsJSON(views)},
		key:        seq,
		"limit":    limit,
		"has_more": more,
	}
	return s.sendUser(c, userID, DispatchRoomMessages, out)
}
