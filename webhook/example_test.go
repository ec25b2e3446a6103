package webhook_test

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"time"

	"github.com/chatmux/chatmux/webhook"
)

// A receiver verifies the raw body before it decodes it, and drops the
// events it has seen (by ID): delivery is at least once.
func ExampleVerify() {
	secret := []byte("the shared secret, 16+ chars")
	seen := map[string]bool{} // a real receiver keeps this in its database
	http.HandleFunc("/chatmux", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(secret, r.Header, body, 5*time.Minute, time.Now()); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var b webhook.Body
		if err := json.Unmarshal(body, &b); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		for _, e := range b.Events {
			if seen[e.ID.String()] {
				continue
			}
			seen[e.ID.String()] = true
			for _, u := range e.Recipients {
				log.Printf("push to %s: a message in %s", u.Username, e.Room.Name)
			}
		}
		w.WriteHeader(http.StatusNoContent) // any 2xx: delivered
	})
}
