package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/memory"
)

var testSecret = []byte("test-secret-of-at-least-32-bytes!!")

func hs256(t *testing.T, secret []byte, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWTAuth(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour).Unix()
	past := time.Now().Add(-time.Hour).Unix()

	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": 7, "username": "eve"}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	rs256, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": 7, "username": "eve"}).SignedString(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	hs512, err := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"sub": 7, "username": "eve"}).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		token   string // sent as ?token=
		bearer  string // sent as Authorization header (whole value)
		wantID  int64
		wantErr bool
		check   func(t *testing.T, u *testUser)
	}{
		{
			name:   "valid token with all claims",
			token:  hs256(t, testSecret, jwt.MapClaims{"sub": 42, "username": "alice", "email": "a@example.com", "first_name": "Alice", "last_name": "Liddell", "exp": future}),
			wantID: 42,
			check: func(t *testing.T, u *testUser) {
				if u.Username != "alice" || u.Email != "a@example.com" || u.FirstName != "Alice" || u.LastName != "Liddell" {
					t.Errorf("user = %+v", u)
				}
			},
		},
		{name: "number sub", token: hs256(t, testSecret, jwt.MapClaims{"sub": 9007199254740993, "username": "big"}), wantID: 9007199254740993},
		{name: "string sub", token: hs256(t, testSecret, jwt.MapClaims{"sub": "17", "username": "bob"}), wantID: 17},
		{name: "bearer header", bearer: "Bearer " + hs256(t, testSecret, jwt.MapClaims{"sub": 5, "username": "carol"}), wantID: 5},
		{name: "bearer header lower case", bearer: "bearer " + hs256(t, testSecret, jwt.MapClaims{"sub": 6, "username": "dan"}), wantID: 6},
		{name: "no token", wantErr: true},
		{name: "missing username", token: hs256(t, testSecret, jwt.MapClaims{"sub": 1}), wantErr: true},
		{name: "empty username", token: hs256(t, testSecret, jwt.MapClaims{"sub": 1, "username": ""}), wantErr: true},
		{name: "username with spaces", token: hs256(t, testSecret, jwt.MapClaims{"sub": 1, "username": "a b"}), wantErr: true},
		{name: "missing sub", token: hs256(t, testSecret, jwt.MapClaims{"username": "x"}), wantErr: true},
		{name: "non-numeric sub", token: hs256(t, testSecret, jwt.MapClaims{"sub": "abc", "username": "x"}), wantErr: true},
		{name: "zero sub", token: hs256(t, testSecret, jwt.MapClaims{"sub": 0, "username": "x"}), wantErr: true},
		{name: "negative sub", token: hs256(t, testSecret, jwt.MapClaims{"sub": -3, "username": "x"}), wantErr: true},
		{name: "fractional sub", token: hs256(t, testSecret, jwt.MapClaims{"sub": 1.5, "username": "x"}), wantErr: true},
		{name: "bad signature", token: hs256(t, []byte("another-secret-another-secret-xx"), jwt.MapClaims{"sub": 1, "username": "x"}), wantErr: true},
		{name: "alg none", token: none, wantErr: true},
		{name: "alg RS256", token: rs256, wantErr: true},
		{name: "alg HS512", token: hs512, wantErr: true},
		{name: "expired", token: hs256(t, testSecret, jwt.MapClaims{"sub": 1, "username": "x", "exp": past}), wantErr: true},
		{name: "not yet valid", token: hs256(t, testSecret, jwt.MapClaims{"sub": 1, "username": "x", "nbf": future}), wantErr: true},
		{name: "garbage", token: "not.a.jwt", wantErr: true},
		{name: "bearer without token", bearer: "Bearer ", wantErr: true},
		{name: "basic auth header", bearer: "Basic YWxpY2U6cHc=", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := memory.New()
			auth := jwtAuth(testSecret, st)
			target := "/messaging/"
			if tt.token != "" {
				target += "?token=" + url.QueryEscape(tt.token)
			}
			r := httptest.NewRequest(http.MethodGet, target, nil)
			if tt.bearer != "" {
				r.Header.Set("Authorization", tt.bearer)
			}
			u, err := auth(r)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("accepted: %+v", u)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if u.ID != tt.wantID {
				t.Errorf("ID = %d, want %d", u.ID, tt.wantID)
			}
			// The user is now known to the store under its token id.
			got, err := st.Users(context.Background(), []int64{tt.wantID})
			if err != nil || len(got) != 1 || got[0].Username != u.Username {
				t.Errorf("store users = %+v, %v; want %q", got, err, u.Username)
			}
			if tt.check != nil {
				tt.check(t, &testUser{u.Username, u.Email, u.FirstName, u.LastName})
			}
		})
	}
}

type testUser struct{ Username, Email, FirstName, LastName string }

// A username already held by another id is refused rather than stolen.
func TestJWTAuthUsernameConflict(t *testing.T) {
	st := memory.New()
	if _, err := st.UpsertUser(context.Background(), store.User{ID: 1, Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	auth := jwtAuth(testSecret, st)
	r := httptest.NewRequest(http.MethodGet, "/messaging/?token="+hs256(t, testSecret, jwt.MapClaims{"sub": 2, "username": "alice"}), nil)
	if u, err := auth(r); err == nil {
		t.Fatalf("accepted %+v", u)
	}
}
