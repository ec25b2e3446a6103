package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/memory"
)

// A valid token of a user deleted for good is refused with an error that
// wraps chatmux.ErrUserDeleted (the server closes with 4011, not 4001),
// and the deleted user stays deleted.
func TestJWTAuthDeletedUser(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	if _, err := st.UpsertUser(ctx, store.User{ID: 5, Username: "eve", Email: "eve@example.com"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DeleteUser(ctx, 5); err != nil {
		t.Fatal(err)
	}
	auth := jwtAuth(testSecret, st)
	r := httptest.NewRequest(http.MethodGet, "/messaging/?token="+hs256(t, testSecret, jwt.MapClaims{"sub": 5, "username": "eve"}), nil)
	u, err := auth(r)
	if u != nil || !errors.Is(err, chatmux.ErrUserDeleted) || errors.Is(err, chatmux.ErrUnavailable) {
		t.Fatalf("auth = %+v, %v: want an error wrapping ErrUserDeleted only", u, err)
	}
	us, err := st.Users(ctx, []int64{5})
	if err != nil || len(us) != 1 || !us[0].Deleted || us[0].Email != "" {
		t.Fatalf("user 5 after the attempt = %+v, %v", us, err)
	}
}
