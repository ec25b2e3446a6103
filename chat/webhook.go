package chat

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/webhook"
)

// Offline webhooks (docs/protocol.md#offline-webhooks). A send asks the
// store for the members without a live session (NewMessage.Offline, the
// InactivityThreshold), computed in the send's transaction, and with an
// outbox for the event's row, leased to this node; once the message is
// stored and published, its event is handed to the dispatcher, which
// queues it without waiting. A duplicate send makes no event: the
// original send made it.

// webhookSend sets the offline fields of a send when webhooks are on, and
// returns the time from which the outbox row's lease counts (taken before
// the store's clock reads it, so that this node's view of the lease never
// ends later than the store's).
func (s *Service) webhookSend(nm *store.NewMessage) time.Time {
	d := s.cfg.Webhooks
	if d == nil {
		return time.Time{}
	}
	nm.Offline = s.cfg.InactivityThreshold
	if d.Outbox() != nil {
		nm.OutboxLease = d.Config().Lease
	}
	return time.Now()
}

// offlineWebhook hands the event of a stored message with offline
// recipients to the dispatcher; msg is its wire Message object.
func (s *Service) offlineWebhook(res store.SendResult, msg json.RawMessage, leased time.Time) {
	d := s.cfg.Webhooks
	if d == nil || res.Duplicate || len(res.Offline) == 0 {
		return
	}
	rec := make([]webhook.Recipient, len(res.Offline))
	for i, r := range res.Offline {
		rec[i] = webhook.Recipient{ID: r.ID, Username: r.Username}
	}
	p := webhook.Pending{
		Event: webhook.Event{ID: res.Message.ID, Type: webhook.TypeMessageOffline, CreatedAt: res.Message.CreatedAt,
			Room:    webhook.Room{ID: res.Message.RoomID, Name: res.RoomName, Type: string(res.RoomType)},
			Message: msg, Recipients: rec},
		OutboxID: res.OutboxID,
	}
	if res.OutboxID != 0 {
		p.LeaseUntil = leased.Add(d.Config().Lease)
	}
	d.Enqueue(p) // counted and logged by the dispatcher when it does not fit
}

// WebhookEvents builds the events of outbox rows (a webhook.Builder): the
// message as it is now, its room, and the recipients that are still users.
// A row whose message is gone or soft-deleted, or whose recipients are all
// deleted, gets an event with a zero ID (nothing to send).
func (s *Service) WebhookEvents(ctx context.Context, rows []store.OutboxEvent) ([]webhook.Event, error) {
	ids := make([]uuid.UUID, len(rows))
	var userIDs []int64
	for i, r := range rows {
		ids[i] = r.MessageID
		userIDs = append(userIDs, r.Recipients...)
	}
	views, err := s.st.MessageViews(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[uuid.UUID]*store.MessageView, len(views))
	for i := range views {
		byID[views[i].ID] = &views[i]
	}
	us, err := s.st.Users(ctx, store.UniqueInt64(userIDs))
	if err != nil {
		return nil, err
	}
	users := make(map[int64]store.User, len(us))
	for _, u := range us {
		if !u.Deleted {
			users[u.ID] = u
		}
	}
	rooms := map[uuid.UUID]*store.Room{}
	out := make([]webhook.Event, len(rows))
	for i, r := range rows {
		v := byID[r.MessageID]
		if v == nil || v.IsDeleted {
			continue
		}
		room, ok := rooms[r.RoomID]
		if !ok {
			rm, err := s.st.Room(ctx, r.RoomID)
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				return nil, err
			default:
				room = &rm
			}
			rooms[r.RoomID] = room
		}
		if room == nil {
			continue
		}
		var rec []webhook.Recipient
		for _, id := range r.Recipients {
			if u, ok := users[id]; ok {
				rec = append(rec, webhook.Recipient{ID: u.ID, Username: u.Username})
			}
		}
		if len(rec) == 0 {
			continue
		}
		msg, err := marshal(s.messageJSON(v))
		if err != nil {
			return nil, err
		}
		out[i] = webhook.Event{ID: r.MessageID, Type: webhook.TypeMessageOffline, CreatedAt: r.CreatedAt,
			Room: webhook.Room{ID: room.ID, Name: room.Name, Type: string(room.Type)}, Message: msg, Recipients: rec}
	}
	return out, nil
}

// WebhookRelay returns the relay of the outbox into Config.Webhooks, nil
// when webhooks are off or the dispatcher has no outbox. Every node runs
// one (Relay.Run) while it serves.
func (s *Service) WebhookRelay(cfg webhook.RelayConfig) *webhook.Relay {
	d := s.cfg.Webhooks
	if d == nil || d.Outbox() == nil {
		return nil
	}
	if cfg.Logger == nil {
		cfg.Logger = s.log
	}
	return webhook.NewRelay(d, d.Outbox(), s.WebhookEvents, cfg)
}
