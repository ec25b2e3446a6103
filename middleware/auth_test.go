package middleware_test

import (
	"testing"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/middleware"
)

func TestRequireAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		user       *chatmux.User
		wantCode   int
		wantCalled bool
	}{
		{"anonymous", nil, chatmux.CodePermissionDenied, false},
		{"user", &chatmux.User{ID: 1}, 0, true},
		{"user zero", &chatmux.User{ID: 0}, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			called := false
			r := router("x", func(*chatmux.Context) error { called = true; return nil }, middleware.RequireAuth)
			err := serve(r, "x", tc.user)
			if errCode(err) != tc.wantCode || called != tc.wantCalled {
				t.Fatalf("err = %v, called = %v; want code %d, called %v", err, called, tc.wantCode, tc.wantCalled)
			}
			if tc.wantCode != 0 && errDetail(err) != middleware.DetailNotAuthenticated {
				t.Errorf("detail = %v", errDetail(err))
			}
		})
	}
}

func TestRequireAdmin(t *testing.T) {
	t.Parallel()
	admin, user := &chatmux.User{ID: 1, Claims: map[string]any{"is_staff": true}}, &chatmux.User{ID: 2}
	isStaff := func(c *chatmux.Context) (bool, error) { return c.User().Claims["is_staff"] == true, nil }
	failing := func(err error) middleware.Predicate {
		return func(*chatmux.Context) (bool, error) { return false, err }
	}
	notFound := chatmux.NotFound()
	tests := []struct {
		name       string
		mw         chatmux.Middleware
		user       *chatmux.User
		wantCode   int
		wantDetail any
		wantErr    error // returned as is, when set
	}{
		{name: "admin", mw: middleware.RequireAdmin(isStaff), user: admin},
		{name: "not admin", mw: middleware.RequireAdmin(isStaff), user: user, wantCode: chatmux.CodePermissionDenied, wantDetail: middleware.DetailNoPermission},
		{name: "anonymous", mw: middleware.RequireAdmin(isStaff), wantCode: chatmux.CodePermissionDenied, wantDetail: middleware.DetailNotAuthenticated},
		{name: "predicate *Error", mw: middleware.RequireAdmin(failing(notFound)), user: user, wantCode: chatmux.CodeNotFound, wantErr: notFound},
		{name: "predicate error", mw: middleware.RequireAdmin(failing(errBoom)), user: user, wantCode: -1, wantErr: errBoom},
		{name: "permission detail", mw: middleware.RequirePermission(isStaff, "Only staff may purge a room."), user: user, wantCode: chatmux.CodePermissionDenied, wantDetail: "Only staff may purge a room."},
		{name: "permission default detail", mw: middleware.RequirePermission(isStaff, ""), user: user, wantCode: chatmux.CodePermissionDenied, wantDetail: middleware.DetailNoPermission},
		{name: "permission anonymous", mw: middleware.RequirePermission(func(c *chatmux.Context) (bool, error) { return c.User() == nil, nil }, ""), wantCode: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			called := false
			r := router("room.purge", func(*chatmux.Context) error { called = true; return nil }, tc.mw)
			err := serve(r, "room.purge", tc.user)
			if got := errCode(err); got != tc.wantCode {
				t.Fatalf("code = %d (%v), want %d", got, err, tc.wantCode)
			}
			if called != (tc.wantCode == 0) {
				t.Errorf("handler called = %v with code %d", called, tc.wantCode)
			}
			if tc.wantDetail != nil && errDetail(err) != tc.wantDetail {
				t.Errorf("detail = %v, want %v", errDetail(err), tc.wantDetail)
			}
			if tc.wantErr != nil && err != tc.wantErr {
				t.Errorf("err = %v, want %v as is", err, tc.wantErr)
			}
		})
	}
}

func TestRequirePanicsOnNilPredicate(t *testing.T) {
	t.Parallel()
	for name, f := range map[string]func(){
		"RequireAdmin":      func() { middleware.RequireAdmin(nil) },
		"RequirePermission": func() { middleware.RequirePermission(nil, "") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s(nil) did not panic", name)
				}
			}()
			f()
		}()
	}
}
