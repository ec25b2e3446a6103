package postgres

import "testing"

func TestSessionDefaults(t *testing.T) {
	const g = "plan_cache_mode=force_generic_plan"
	for _, tc := range []struct{ in, want string }{
		{"postgres://u@h:5432/db?sslmode=disable", "postgres://u@h:5432/db?jit=off&" + g + "&sslmode=disable"},
		{"postgresql://u@h/db", "postgresql://u@h/db?jit=off&" + g},
		{"postgres://u@h/db?jit=on", "postgres://u@h/db?jit=on&" + g},
		{"postgres://u@h/db?plan_cache_mode=auto", "postgres://u@h/db?jit=off&plan_cache_mode=auto"},
		{"host=h dbname=db", "host=h dbname=db jit=off " + g},
		{"host=h jit=on", "host=h jit=on " + g},
		{"", "jit=off " + g},
	} {
		if got := withSessionDefaults(tc.in); got != tc.want {
			t.Errorf("withSessionDefaults(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
