package postgres

import "testing"

func TestWithJITOff(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u@h:5432/db?sslmode=disable", "postgres://u@h:5432/db?jit=off&sslmode=disable"},
		{"postgresql://u@h/db", "postgresql://u@h/db?jit=off"},
		{"postgres://u@h/db?jit=on", "postgres://u@h/db?jit=on"},
		{"host=h dbname=db", "host=h dbname=db jit=off"},
		{"host=h jit=on", "host=h jit=on"},
		{"", "jit=off"},
	} {
		if got := withJITOff(tc.in); got != tc.want {
			t.Errorf("withJITOff(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
