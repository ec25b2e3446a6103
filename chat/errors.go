package chat

import (
	"errors"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
)

// StoreError maps an error of the store to the protocol's error envelope:
// store.ErrNotFound is 4004 "Resource not found.", store.ErrConflict 4005
// "Database constraint violated.", a *store.ValidationError 4003 with its
// detail (a list for the domain invariants such as the cap message, a field
// map when it names a field), a cancelled context and anything else 4006.
// An *chatmux.Error passes through unchanged; nil stays nil.
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
	case errors.As(err, &ve):
		if ve.Field == "" || errors.Is(err, store.ErrCapExceeded) || errors.Is(err, store.ErrDuplicateOneToOne) ||
			errors.Is(err, store.ErrOneToOneParticipants) || errors.Is(err, store.ErrWrongRoomType) {
			return &chatmux.Error{Code: chatmux.CodeValidation, Detail: []string{ve.Message}, Err: err}
		}
		return &chatmux.Error{Code: chatmux.CodeValidation, Detail: map[string][]string{ve.Field: {ve.Message}}, Err: err}
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
