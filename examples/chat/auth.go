package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/internal/devauth"
	"github.com/chatmux/chatmux/store"
)

// Errors of the authenticators: wrong credentials. The server logs them;
// the client only sees the 4001 close.
var (
	errNoCredentials = errors.New("no credentials: pass ?token=<jwt> or an Authorization: Bearer header")
	errBadSubject    = errors.New("invalid token: sub must be a positive integer user id")
	errNoUsernameTok = errors.New("invalid token: the username claim is required")
)

// userSync records an authenticated user in the chat store, so that other
// users can add it to rooms by id. store.Store satisfies it.
type userSync interface {
	UpsertUser(ctx context.Context, u store.User) (store.User, error)
}

// jwtAuth returns an Authenticator that accepts HS256 JSON Web Tokens
// signed with secret, read from the query parameter "token" or from an
// "Authorization: Bearer" header. The claims are
//
//	sub          the user id: a positive integer, as a JSON number or string (required)
//	username     required
//	email, first_name, last_name   optional
//	exp, nbf     checked when present
//
// Any other algorithm ("none", RS256, HS512, ...) is refused. When users is
// not nil, every authenticated user is upserted into it (id, username,
// email and names), so that the chat store knows it before its first event.
//
// Wrong credentials (a bad token, a username that belongs to another id)
// close the connection with 4001; a user deleted for good (the store says
// store.ErrUserDeleted) with 4011 (docs/protocol.md#deleted-users). When users cannot answer (unavailable,
// past its deadline or the request's), the error wraps
// chatmux.ErrUnavailable and the server closes with 1013 (try again
// later): the client keeps its token and reconnects
// (docs/protocol.md#close-codes).
func jwtAuth(secret []byte, users userSync) chatmux.Authenticator {
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithJSONNumber(),
		jwt.WithLeeway(30*time.Second),
	)
	keyFunc := func(*jwt.Token) (any, error) { return secret, nil }
	return func(r *http.Request) (*chatmux.User, error) {
		raw := bearerToken(r)
		if raw == "" {
			return nil, errNoCredentials
		}
		claims := jwt.MapClaims{}
		if _, err := parser.ParseWithClaims(raw, claims, keyFunc); err != nil {
			return nil, fmt.Errorf("invalid token: %w", err)
		}
		u, err := userFromClaims(claims)
		if err != nil {
			return nil, err
		}
		if users != nil {
			if _, err := users.UpsertUser(r.Context(), store.User{
				ID: u.ID, Username: u.Username, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName,
			}); err != nil {
				return nil, fmt.Errorf("failed to record user %d: %w", u.ID, devauth.Unavailable(devauth.UserDeleted(err)))
			}
		}
		return u, nil
	}
}

// bearerToken returns the token of the request: ?token= first, then the
// Authorization header (browsers cannot set headers on a WebSocket).
func bearerToken(r *http.Request) string {
	if t := r.URL.Query().Get("token"); t != "" {
		return t
	}
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// userFromClaims builds the chatmux user of a verified token.
func userFromClaims(claims jwt.MapClaims) (*chatmux.User, error) {
	id, err := subjectID(claims["sub"])
	if err != nil {
		return nil, err
	}
	username, _ := claims["username"].(string)
	if username == "" {
		return nil, errNoUsernameTok
	}
	if !devauth.ValidUsername(username) {
		return nil, devauth.ErrBadUsername
	}
	str := func(k string) string { s, _ := claims[k].(string); return s }
	return &chatmux.User{
		ID:        id,
		Username:  username,
		Email:     str("email"),
		FirstName: str("first_name"),
		LastName:  str("last_name"),
		Claims:    map[string]any(claims),
	}, nil
}

// subjectID reads the sub claim: a JSON number (json.Number, as the parser
// runs WithJSONNumber) or a string of digits.
func subjectID(v any) (int64, error) {
	var s string
	switch t := v.(type) {
	case json.Number:
		s = t.String()
	case string:
		s = t
	case float64: // a parser without WithJSONNumber
		if t != float64(int64(t)) {
			return 0, errBadSubject
		}
		s = strconv.FormatInt(int64(t), 10)
	default:
		return 0, errBadSubject
	}
	id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || id <= 0 {
		return 0, errBadSubject
	}
	return id, nil
}
