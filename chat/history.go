package chat

import (
	"context"
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

// handleRoomMessages handles room.messages: data {room_id, paginate?:
// {page, size}} (docs/protocol.md#pagination,
// docs/protocol.md#diff-pagination), or {room_id, after_seq | before_seq,
// limit?} (docs/protocol.md#catch-up). Members only; the data is read into
// a HistoryQuery and answered by history, as the Go API's History.
func (s *Service) handleRoomMessages(c *chatmux.Context) error {
	u, f, roomID, _, err := s.memberEvent(c)
	if err != nil {
		return err
	}
	q, err := readHistoryQuery(f)
	if err != nil {
		return err
	}
	_, err = s.history(c.Context(), ev(c), eventActor(u), roomID, q)
	return err
}

// readHistoryQuery reads the query of room.messages. after_seq or
// before_seq (not both) is a seq (an integer of at least 0), with an
// optional limit of at least 1; else paginate {page, size}: no paginate, a
// non-object or an empty object means every message; page and size must
// both be given and truthy (Python's truth), as integers.
func readHistoryQuery(f fields) (HistoryQuery, error) {
	var q HistoryQuery
	if f.get("after_seq") != nil || f.get("before_seq") != nil {
		if f.get("after_seq") != nil && f.get("before_seq") != nil {
			return q, chatmux.Validation(msgSeqNotBoth)
		}
		key, dst := "after_seq", &q.AfterSeq
		if f.get("after_seq") == nil {
			key, dst = "before_seq", &q.BeforeSeq
		}
		seq, ok := ParseUserID(f.get(key))
		if !ok || seq < 0 {
			return q, chatmux.FieldError(key, msgNotInt)
		}
		*dst = &seq
		limit, err := f.limit(0, math.MaxInt32)
		if err != nil {
			return q, err
		}
		q.Limit = int(limit)
		return q, nil
	}
	var p fields
	if v := f.get("paginate"); jsonKind(v) != 'o' || json.Unmarshal(v, &p) != nil || len(p) == 0 {
		return q, nil
	}
	pv, sv := p.get("page"), p.get("size")
	if !truthy(pv) || !truthy(sv) {
		return q, chatmux.Validation(msgPageAndSize)
	}
	pg, ok1 := pyInt(pv)
	sz, ok2 := pyInt(sv)
	if !ok1 || !ok2 {
		return q, chatmux.Validation(msgInvalidTypes)
	}
	if pg == 0 || sz == 0 {
		return q, chatmux.Validation(msgPageAndSize)
	}
	if pg > math.MaxInt32 || pg < math.MinInt32 {
		pg = -1 // out of range: the last page
	}
	q.Page, q.PageSize = int(pg), int(max(min(sz, math.MaxInt32), math.MinInt32))
	return q, nil
}

// history is room.messages after its access check (memberAccess):
// roommessages.dispatch goes to all the user's devices (the system's
// query publishes nothing). Without a page every visible message comes,
// newest first; with one, a page of at most Config.MaxPageSize, with the
// effective page echoed. after_seq returns the messages after a seq,
// oldest first; before_seq those before it, newest first; both with
// has_more and a limit of at most Config.MaxPageSize.
func (s *Service) history(ctx context.Context, o origin, a actor, roomID uuid.UUID, q HistoryQuery) (json.RawMessage, error) {
	var out any
	var err error
	if q.AfterSeq != nil || q.BeforeSeq != nil {
		out, err = s.messagesBySeq(ctx, roomID, q)
	} else {
		out, err = s.messagesPage(ctx, roomID, q)
	}
	if err != nil {
		return nil, err
	}
	if a.system() {
		return marshal(out)
	}
	return s.sendUser(ctx, o, a.id, DispatchRoomMessages, out)
}

// messagesPage reads every message, or one page.
func (s *Service) messagesPage(ctx context.Context, roomID uuid.UUID, q HistoryQuery) (any, error) {
	paginated := q.Page != 0 || q.PageSize != 0
	if paginated {
		if q.Page == 0 || q.PageSize == 0 {
			return nil, chatmux.Validation(msgPageAndSize)
		}
		if q.PageSize < 0 {
			return nil, chatmux.FieldError("size", msgMinOne)
		}
	}
	size := min(q.PageSize, s.cfg.MaxPageSize)
	p, err := s.st.MessagesPage(ctx, roomID, q.Page, size)
	if err != nil {
		return nil, StoreError(err)
	}
	data := messagesData{RoomID: roomID.String(), Messages: s.viewsJSON(p.Messages)}
	if !paginated {
		return struct {
			Data messagesData `json:"data"`
		}{data}, nil
	}
	return struct {
		HasNext     bool         `json:"has_next"`
		HasPrevious bool         `json:"has_previous"`
		NextPage    *int         `json:"next_page_number"`
		PrevPage    *int         `json:"prev_page_number"`
		Page        int          `json:"page"`
		Size        int          `json:"size"`
		Data        messagesData `json:"data"`
	}{p.HasNext, p.HasPrevious, pageNumber(p.NextPage()), pageNumber(p.PreviousPage()), p.Page, p.Size, data}, nil
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

// messagesBySeq reads the messages after or before a seq.
func (s *Service) messagesBySeq(ctx context.Context, roomID uuid.UUID, q HistoryQuery) (any, error) {
	if q.AfterSeq != nil && q.BeforeSeq != nil {
		return nil, chatmux.Validation(msgSeqNotBoth)
	}
	key, seq := "after_seq", q.AfterSeq
	if seq == nil {
		key, seq = "before_seq", q.BeforeSeq
	}
	if *seq < 0 {
		return nil, chatmux.FieldError(key, msgNotInt)
	}
	if q.Limit < 0 {
		return nil, chatmux.FieldError("limit", msgMinOne)
	}
	limit := s.cfg.MaxPageSize
	if q.Limit > 0 {
		limit = min(q.Limit, limit)
	}
	var views []store.MessageView
	var err error
	if key == "after_seq" {
		views, err = s.st.MessagesAfter(ctx, roomID, *seq, limit+1)
	} else {
		views, err = s.st.MessagesBefore(ctx, roomID, *seq, limit+1)
	}
	if err != nil {
		return nil, StoreError(err)
	}
	more := len(views) > limit
	if more {
		views = views[:limit]
	}
	return map[string]any{
		"data":     messagesData{RoomID: roomID.String(), Messages: s.viewsJSON(views)},
		key:        *seq,
		"limit":    limit,
		"has_more": more,
	}, nil
}

// msgSeqNotBoth refuses a query with both seqs.
const msgSeqNotBoth = "Give after_seq or before_seq, not both"
