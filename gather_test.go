package chatmux

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/chatmux/chatmux/internal/wsframe"
)

// recordConn is a socket that takes every write at once and keeps each
// write's bytes.
type recordConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (r *recordConn) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.writes = append(r.writes, bytes.Clone(p))
	r.mu.Unlock()
	return len(p), nil
}

func (r *recordConn) SetWriteDeadline(time.Time) error { return nil }

func (r *recordConn) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.writes)
}

func (r *recordConn) write(i int) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes[i]
}

// gatherConn returns a connection, without a WebSocket, whose writer
// writes to a recordConn, and whose server gathers with delay.
func gatherConn(t *testing.T, delay time.Duration) (*Conn, *recordConn) {
	t.Helper()
	srv := NewServer(NewRouter(), ServerOptions{Logger: quietLogger, GatherDelay: delay})
	rec := &recordConn{}
	return &Conn{srv: srv, ctx: context.Background(), raw: wsframe.NewConn(rec, time.Second)}, rec
}

// frames returns the text frames the server writes for payloads, in one
// write.
func frames(payloads ...string) []byte {
	var b []byte
	for _, p := range payloads {
		b = wsframe.AppendHeader(b, true, wsframe.OpText, len(p))
		b = append(b, p...)
	}
	return b
}

// waitUntil waits until cond holds, failing the test after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		runtime.Gosched()
	}
}

func (c *Conn) isGathering() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gathering
}

func (c *Conn) writerIdle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.writing
}

// A connection that frames keep arriving at holds group frames and sends
// them together; an answer to the connection's own event is not held and
// ends the wait: it goes out with the held frames, in order.
func TestGatherHoldsGroupFramesUntilAnAnswer(t *testing.T) {
	c, rec := gatherConn(t, time.Hour)
	c.push([]byte(`{"n":1}`), true)
	waitUntil(t, "the first frame is written", func() bool { return rec.count() == 1 })
	if got, want := rec.write(0), frames(`{"n":1}`); !bytes.Equal(got, want) {
		t.Fatalf("first write %q, want %q", got, want)
	}
	waitUntil(t, "the writer stops", c.writerIdle)

	// The previous write was small and just now: the writer gathers.
	c.push([]byte(`{"n":2}`), true)
	c.push([]byte(`{"n":3}`), true)
	waitUntil(t, "the writer gathers", c.isGathering)
	c.push([]byte(`{"n":4}`), true)
	if n := rec.count(); n != 1 {
		t.Fatalf("%d writes while gathering, want 1", n)
	}
	c.enqueue([]byte(`{"answer":5}`))
	waitUntil(t, "the gathered frames are written", func() bool { return rec.count() == 2 })
	if got, want := rec.write(1), frames(`{"n":2}`, `{"n":3}`, `{"n":4}`, `{"answer":5}`); !bytes.Equal(got, want) {
		t.Fatalf("second write %q, want %q", got, want)
	}
	waitUntil(t, "the writer stops", c.writerIdle)
}

// An answer is never held: with the previous write just now, an answer
// alone is written at once.
func TestGatherAnswerNotHeld(t *testing.T) {
	c, rec := gatherConn(t, time.Hour)
	c.push([]byte(`{"n":1}`), true)
	waitUntil(t, "the first frame is written", func() bool { return rec.count() == 1 })
	c.enqueue([]byte(`{"answer":2}`))
	waitUntil(t, "the answer is written", func() bool { return rec.count() == 2 })
	if c.isGathering() {
		t.Fatal("the writer gathers for an answer")
	}
}

// The wait ends by itself after GatherDelay.
func TestGatherWaitEnds(t *testing.T) {
	c, rec := gatherConn(t, 20*time.Millisecond)
	c.push([]byte(`{"n":1}`), true)
	waitUntil(t, "the first frame is written", func() bool { return rec.count() == 1 })
	c.push([]byte(`{"n":2}`), true)
	c.push([]byte(`{"n":3}`), true)
	waitUntil(t, "the held frames are written", func() bool { return rec.count() >= 2 })
	waitUntil(t, "the writer stops", c.writerIdle)
	var all []byte
	for i := 1; i < rec.count(); i++ {
		all = append(all, rec.write(i)...)
	}
	if want := frames(`{"n":2}`, `{"n":3}`); !bytes.Equal(all, want) {
		t.Fatalf("written %q, want %q", all, want)
	}
}

// A connection that received nothing for a while (its previous write is
// older than the gathering window) writes at once, as does one whose
// previous write was large, and a server with gathering off.
func TestGatherNotWhenIdleOrLarge(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		c, rec := gatherConn(t, time.Hour)
		c.lastWrite = nanotime() - (gatherWindow+1)*int64(time.Hour)
		c.push([]byte(`{"n":1}`), true)
		waitUntil(t, "the frame is written", func() bool { return rec.count() == 1 })
	})
	t.Run("large", func(t *testing.T) {
		c, rec := gatherConn(t, time.Hour)
		c.push(bytes.Repeat([]byte("x"), gatherMaxBytes), true)
		waitUntil(t, "the first frame is written", func() bool { return rec.count() == 1 })
		c.push([]byte(`{"n":2}`), true)
		waitUntil(t, "the second frame is written", func() bool { return rec.count() == 2 })
	})
	t.Run("off", func(t *testing.T) {
		c, rec := gatherConn(t, -1)
		for i := 1; i <= 3; i++ {
			c.push([]byte(`{"n":1}`), true)
			waitUntil(t, "the frame is written", func() bool { return rec.count() == i })
			waitUntil(t, "the writer stops", c.writerIdle)
		}
	})
}

// Shutdown's drain does not wait for gathering: the held frames go out at
// once. Close ends the wait, and the held frames are dropped.
func TestGatherDrainAndClose(t *testing.T) {
	t.Run("drain", func(t *testing.T) {
		c, rec := gatherConn(t, time.Hour)
		c.push([]byte(`{"n":1}`), true)
		waitUntil(t, "the first frame is written", func() bool { return rec.count() == 1 })
		c.push([]byte(`{"n":2}`), true)
		waitUntil(t, "the writer gathers", c.isGathering)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.drain(ctx)
		if ctx.Err() != nil {
			t.Fatal("drain waited for the gathering delay")
		}
		if got, want := rec.write(1), frames(`{"n":2}`); !bytes.Equal(got, want) {
			t.Fatalf("drained %q, want %q", got, want)
		}
	})
	t.Run("close", func(t *testing.T) {
		c, rec := gatherConn(t, time.Hour)
		c.push([]byte(`{"n":1}`), true)
		waitUntil(t, "the first frame is written", func() bool { return rec.count() == 1 })
		c.push([]byte(`{"n":2}`), true)
		waitUntil(t, "the writer gathers", c.isGathering)
		c.Close(1000, "bye")
		waitUntil(t, "the writer stops", c.writerIdle)
		if n := rec.count(); n != 1 {
			t.Fatalf("%d writes, want 1: a closed connection's held frames are dropped", n)
		}
	})
}

// An event whose handler answered nothing of its own ends the wait: the
// group frames it queued for its own connection (the sender's echo) go
// out at once, with whatever was gathered before them.
func TestGatherEndsAfterOwnEvent(t *testing.T) {
	c, rec := gatherConn(t, time.Hour)
	c.push([]byte(`{"n":1}`), true)
	waitUntil(t, "the first frame is written", func() bool { return rec.count() == 1 })
	waitUntil(t, "the writer stops", c.writerIdle)
	c.push([]byte(`{"n":2}`), true)
	waitUntil(t, "the writer gathers", c.isGathering)
	c.push([]byte(`{"echo":3}`), true)
	c.endGather()
	waitUntil(t, "the gathered frames are written", func() bool { return rec.count() == 2 })
	if got, want := rec.write(1), frames(`{"n":2}`, `{"echo":3}`); !bytes.Equal(got, want) {
		t.Fatalf("second write %q, want %q", got, want)
	}
	// With nothing queued, it leaves the next frames to gather.
	waitUntil(t, "the writer stops", c.writerIdle)
	c.endGather()
	c.push([]byte(`{"n":4}`), true)
	waitUntil(t, "the writer gathers", c.isGathering)
	c.endGather()
	waitUntil(t, "the held frame is written", func() bool { return rec.count() == 3 })
}
