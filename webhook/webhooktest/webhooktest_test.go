package webhooktest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chatmux/chatmux/webhook"
	"github.com/chatmux/chatmux/webhook/webhooktest"
)

var secret = []byte("a secret of webhooktest")

// post sends body to url signed with key (tampered: the body changed after
// signing) and returns the status.
func post(t *testing.T, url string, key []byte, body []byte, tampered bool) int {
	t.Helper()
	st, err := send(url, key, body, tampered)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// send is post for another goroutine than the test's.
func send(url string, key []byte, body []byte, tampered bool) (int, error) {
	ts := time.Now().Unix()
	sig := webhook.Sign(key, ts, body)
	if tampered {
		body = bytes.Replace(body, []byte(`"events"`), []byte(`"events" `), 1)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(webhook.HeaderSignature, sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

func bodyOf(t *testing.T, evs ...webhook.Event) []byte {
	t.Helper()
	b, err := json.Marshal(webhook.Body{Events: evs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func event() webhook.Event {
	return webhook.Event{ID: uuid.New(), Type: webhook.TypeMessageOffline, CreatedAt: time.Now().UTC(),
		Room: webhook.Room{ID: uuid.New(), Name: "r", Type: "GroupChat"}, Message: json.RawMessage(`{}`),
		Recipients: []webhook.Recipient{{ID: 2, Username: "bob"}}}
}

// TestRecordsAndRefuses: a signed request is recorded by id (a repeat
// counts as an event, not as a unique one); a tampered one, one signed
// with another secret and one of another content type are refused as bad
// and record nothing.
func TestRecordsAndRefuses(t *testing.T) {
	r := webhooktest.NewReceiver(t, secret, webhooktest.Options{})
	a, b := event(), event()
	if st := post(t, r.URL(), secret, bodyOf(t, a, b), false); st != http.StatusNoContent {
		t.Fatalf("signed request answered %d", st)
	}
	if st := post(t, r.URL(), secret, bodyOf(t, a), false); st != http.StatusNoContent {
		t.Fatalf("repeat answered %d", st)
	}
	if st := post(t, r.URL(), secret, bodyOf(t, event()), true); st != http.StatusUnauthorized {
		t.Fatalf("tampered request answered %d", st)
	}
	if st := post(t, r.URL(), []byte("another secret of the test"), bodyOf(t, event()), false); st != http.StatusUnauthorized {
		t.Fatalf("request of another secret answered %d", st)
	}
	resp, err := http.Post(r.URL(), "text/plain", bytes.NewReader(bodyOf(t, event())))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain answered %d", resp.StatusCode)
	}
	if s := r.Stats(); s != (webhooktest.Stats{Requests: 5, Bad: 3, Events: 3, Unique: 2}) {
		t.Fatalf("stats %+v", s)
	}
	evs := r.Events()
	if len(evs) != 2 || evs[a.ID].ID != a.ID || evs[b.ID].Recipients[0].Username != "bob" {
		t.Fatalf("events %+v", evs)
	}
	for range 5 {
		<-r.Arrived()
	}
}

// TestFailing: the first FailFirst requests are answered FailStatus, and
// every request while Fail is set; neither is recorded.
func TestFailing(t *testing.T) {
	r := webhooktest.NewReceiver(t, secret, webhooktest.Options{FailFirst: 2, FailStatus: http.StatusInternalServerError})
	e := event()
	for i, want := range []int{500, 500, 204} {
		if st := post(t, r.URL(), secret, bodyOf(t, e), false); st != want {
			t.Fatalf("request %d answered %d, want %d", i, st, want)
		}
	}
	r.Fail(http.StatusTooManyRequests)
	if st := post(t, r.URL(), secret, bodyOf(t, event()), false); st != http.StatusTooManyRequests {
		t.Fatalf("with Fail(429): %d", st)
	}
	r.Fail(0)
	if st := post(t, r.URL(), secret, bodyOf(t, event()), false); st != http.StatusNoContent {
		t.Fatalf("after Fail(0): %d", st)
	}
	if s := r.Stats(); s != (webhooktest.Stats{Requests: 5, Failed: 3, Events: 2, Unique: 2}) {
		t.Fatalf("stats %+v", s)
	}
	if def := webhooktest.NewReceiver(t, secret, webhooktest.Options{FailFirst: 1}); post(t, def.URL(), secret, bodyOf(t, e), false) != http.StatusServiceUnavailable {
		t.Fatal("the default failing status is not 503")
	}
}

// TestHold: a held request is counted and signalled on Arrived, and
// answered only once Hold is closed; Close releases a held request too.
func TestHold(t *testing.T) {
	hold := make(chan struct{})
	r := webhooktest.NewReceiver(t, secret, webhooktest.Options{Hold: hold})
	done := make(chan int, 1)
	body := bodyOf(t, event())
	go func() { st, _ := send(r.URL(), secret, body, false); done <- st }()
	<-r.Arrived()
	if s := r.Stats(); s.Requests != 1 || s.Events != 1 {
		t.Fatalf("stats of a held request %+v", s)
	}
	select {
	case st := <-done:
		t.Fatalf("a held request was answered %d", st)
	default:
	}
	close(hold)
	if st := <-done; st != http.StatusNoContent {
		t.Fatalf("released request answered %d", st)
	}

	r2 := webhooktest.NewReceiver(t, secret, webhooktest.Options{Hold: make(chan struct{})})
	go func() { st, _ := send(r2.URL(), secret, body, false); done <- st }()
	<-r2.Arrived()
	r2.Close()
	<-done
}
