package chat

import (
	"context"
	"errors"
	"fmt"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/store"
)

// StoreError maps an error of the store to the protocol's error envelope:
// store.ErrNotFound is 4004 "Resource not found.", store.ErrConflict 4005
// "Database constraint violated.", store.ErrUserDeleted (a deleted user
// named where a live one is needed) 4005 ["This user has been deleted."]
// unless it is a field's validation error, a *store.ValidationError 4003 with its
// detail (a list for the domain invariants such as the cap message, a field
// map when it names a field), store.ErrUnavailable and a deadline exceeded
// (Config.StoreTimeout) 4013 "Service temporarily unavailable, try
// again.", a cancelled context and anything else 4006. An *chatmux.Error
// passes through unchanged; nil stays nil.
func StoreError(err error) error {
	if err == nil {
		return nil
	}
	var ce *chatmux.Error
	if errors.As(err, &ce) {
		return ce
	}
	var ve *store.ValidationError
	switch {
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return chatmux.Unavailable(err)
	case errors.As(err, &ve):
		if ve.Field == "" || errors.Is(err, store.ErrCapExceeded) || errors.Is(err, store.ErrDuplicateOneToOne) ||
			errors.Is(err, store.ErrOneToOneParticipants) || errors.Is(err, store.ErrWrongRoomType) {
			return &chatmux.Error{Code: chatmux.CodeValidation, Detail: []string{ve.Message}, Err: err}
		}
		return &chatmux.Error{Code: chatmux.CodeValidation, Detail: map[string][]string{ve.Field: {ve.Message}}, Err: err}
	case errors.Is(err, store.ErrUserDeleted):
		return &chatmux.Error{Code: chatmux.CodeConstraint, Detail: []string{msgUserDeleted}, Err: err}
	case errors.Is(err, store.ErrNotFound):
		return &chatmux.Error{Code: chatmux.CodeNotFound, Detail: chatmux.DetailNotFound, Err: err}
	case errors.Is(err, store.ErrConflict):
		return chatmux.Constraint(err)
	case errors.Is(err, store.ErrDuplicateOneToOne):
		return &chatmux.Error{Code: chatmux.CodeValidation, Detail: []string{store.MsgChatExists}, Err: err}
	case errors.Is(err, store.ErrOneToOneParticipants):
		return &chatmux.Error{Code: chatmux.CodeValidation, Detail: []string{store.MsgOneToOneTwo}, Err: err}
	case errors.Is(err, store.ErrCapExceeded):
		return &chatmux.Error{Code: chatmux.CodeValidation, Detail: []string{"Maximum number of members exceeded"}, Err: err}
	case errors.Is(err, store.ErrWrongRoomType):
		return &chatmux.Error{Code: chatmux.CodeValidation, Detail: []string{"Invalid room type for this action"}, Err: err}
	case errors.Is(err, store.ErrInvalid):
		return &chatmux.Error{Code: chatmux.CodeValidation, Detail: []string{"Invalid input."}, Err: err}
	}
	// A cancelled context (the connection closed) and anything else.
	return chatmux.Internal(err)
}

// brokerError maps an error of the broker (joining or leaving a group at
// connect or resync): an unavailable broker or a deadline is 4013, anything
// else 4006.
func brokerError(err error) error {
	if errors.Is(err, groups.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return chatmux.Unavailable(err)
	}
	return chatmux.Internal(err)
}

// Fixed details of the protocol's errors (docs/protocol.md#errors,
// docs/protocol.md#permission-details).
const (
	msgInvalidRoomIDType    = "Invalid room_id type"
	msgInvalidMessageIDType = "Invalid message_id type"
	msgRequired             = "This field is required."
	msgBlank                = "This field may not be blank."
	msgNotString            = "Not a valid string."
	msgNotBool              = "Must be a valid boolean."
	msgNotObject            = "Must be an object."
	msgNotInt               = "A valid integer is required."
	msgMinOne               = "Ensure this value is greater than or equal to 1."
	msgEmptyList            = "This list may not be empty."
	msgDeniedSend           = "User is not authorized to send message to this room"
	msgDeniedMessage        = "User is not authorized to access this message"
	msgDeniedModify         = "User is not authorized to modify this message"
	msgDeniedRoom           = "User is not authorized access this room"
	msgDeniedAdd            = "User is not authorized to add new members to this room"
	msgDeniedRemove         = "User is not authorized to remove members from this room"
	msgDeniedCreator        = "User is not the creator of this room"
	msgDeniedAdmin          = "User is not an admin of this room"
	msgInvalidReactionType  = "invalid reaction type"
	msgAtLeastOneMessage    = "Atleast one message_id is required for modification"
	msgSameRoom             = "All messages marked for modification must come from the same room"
	msgOneAtATime           = "You can only update one message at a time"
	msgExtraFieldsForUpdate = "'extra_fields' field should be provided for update action"
	msgContentForUpdate     = "Content should be provided for update action"
	msgActionRequired       = "Action must be provided"
	msgInvalidAction        = "Invalid action type"
	msgDataRequired         = "data must be provided"
	msgUsersRequired        = "User ids must be provided"
	msgUsersList            = "User ids must be a list/array"
	msgPermissionRequired   = "Permission to add or remove should be passed"
	msgPermissionList       = "Permission must be a list"
	msgPermissionsGroupChan = "Invalid room, Can only modify permissions in Groups/Channels"
	msgPageAndSize          = "page and size required"
	msgInvalidTypes         = "Invalid types"
	msgInvalidResourceType  = "Invalid resource type"
	msgAskAdmin             = "Ask an admin to add you to the group"
	msgPrivateChannel       = "Channel is private, ask a moderator to add you to the channel"
	msgJoinOneToOne         = "You can only join a channel/group chat"
	msgLeaveOneToOne        = "You can only leave a channel/group chat"
	msgInvalidURL           = "Enter a valid URL."
	msgPropertyObject       = "property must be an object"
	msgPreferencesObject    = "preferences must be an object"
	msgUserDeleted          = "This user has been deleted."
)

// msgNotUUID is the detail for a string that is not a UUID.
func msgNotUUID(s string) string { return fmt.Sprintf("“%s” is not a valid UUID.", s) }
