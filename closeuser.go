package chatmux

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/chatmux/chatmux/groups"
)

// CloseUser closes every connection of a user, on every node, with a
// WebSocket close code and reason: a control message through the broker
// to the user's group, as JoinUser and LeaveUser send. Each connection
// drops what is still queued for it and starts its close handshake; its
// $disconnect runs as for any close. With the in-process broker the local
// connections have started closing when it returns; with Redis, every
// node that has connections of the user has closed them when it returns
// nil (within the broker's ControlTimeout). A user without connections is
// not an error.
//
// code must be one a server may send: 1000, 1001, 1008, 1011, 1013 or
// 3000-4999 (CloseUserDeleted for a user deleted for good,
// docs/protocol.md#deleted-users). reason must be valid UTF-8; one longer
// than a close frame carries (123 bytes) is cut at a character boundary.
func (s *Server) CloseUser(ctx context.Context, userID int64, code int, reason string) error {
	if !sendableCloseCode(code) {
		return fmt.Errorf("chatmux: close code %d cannot be sent by a server", code)
	}
	if !utf8.ValidString(reason) {
		return fmt.Errorf("chatmux: close reason is not valid UTF-8")
	}
	if err := s.broker.Publish(ctx, groups.User(userID), groups.CloseMessage(code, reason)); err != nil {
		return fmt.Errorf("failed to close user %d's connections: %w", userID, err)
	}
	return nil
}

// sendableCloseCode reports whether a server may close a connection with
// code (RFC 6455, section 7.4): the defined codes an endpoint may send, and
// the ranges for libraries and applications.
func sendableCloseCode(code int) bool {
	switch code {
	case 1000, 1001, 1008, 1011, 1013:
		return true
	}
	return code >= 3000 && code <= 4999
}
