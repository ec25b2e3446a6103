package groups

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatmux/chatmux/internal/testenv"
)

// counter is a Member that counts data deliveries into a shared total.
type counter struct {
	total  *atomic.Int64
	target int64
	done   chan struct{}
	once   *sync.Once
}

func (c *counter) Deliver(m *Message) {
	if m.Kind == KindData && c.total.Add(1) == c.target {
		c.once.Do(func() { close(c.done) })
	}
}

// benchFanout publishes b.N messages into one group of `members` members
// spread evenly over the brokers, from `senders` goroutines (10 senders,
// one message in flight each, as chatbench's workload), and waits until
// every member has every message. It reports deliveries per second.
func benchFanout(b *testing.B, brokers []Broker, members, senders int) {
	ctx := context.Background()
	var total atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	target := int64(b.N) * int64(members)
	group := "bench"
	for i := range members {
		mm := &counter{total: &total, target: target, done: done, once: &once}
		if err := brokers[i%len(brokers)].Join(ctx, group, mm); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = brokers[i%len(brokers)].Leave(ctx, group, mm) }()
	}
	frame := []byte(`{"eventType":"message.created","data":{"id":"01HZX3","room_id":"42","user_id":7,"text":"hello there, general kenobi","created_at":"2026-11-25T12:00:00Z"}}`)
	msg := &Message{Kind: KindData, Data: frame}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Senders take turns over the brokers (one per node when
			// there are several).
			br := brokers[s%len(brokers)]
			for next.Add(1) <= int64(b.N) {
				if err := br.Publish(ctx, group, msg); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if b.N > 0 {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.Fatalf("delivered %d of %d", total.Load(), target)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(target)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

func BenchmarkFanout(b *testing.B) {
	const members, senders = 100, 10
	b.Run("memory", func(b *testing.B) {
		benchFanout(b, []Broker{NewMemory()}, members, senders)
	})
	for _, nodes := range []int{1, 2} {
		b.Run("redis-"+strconv.Itoa(nodes)+"node", func(b *testing.B) {
			benchFanout(b, redisBrokers(b, nodes), members, senders)
		})
	}
}

// BenchmarkFanoutOneSender is one publisher with one message in flight:
// ns/op is the latency of a publication until every member has it.
func BenchmarkFanoutOneSender(b *testing.B) {
	const members = 100
	b.Run("memory", func(b *testing.B) {
		benchFanout(b, []Broker{NewMemory()}, members, 1)
	})
	for _, nodes := range []int{1, 2} {
		b.Run("redis-"+strconv.Itoa(nodes)+"node", func(b *testing.B) {
			benchFanoutSequential(b, redisBrokers(b, nodes), members)
		})
	}
}

func redisBrokers(b *testing.B, nodes int) []Broker {
	prefix := testenv.UniqueName("b") + ":"
	var brokers []Broker
	for i := range nodes {
		n := newRedisNode(b, prefix+strconv.Itoa(i), "", RedisOptions{Prefix: prefix})
		brokers = append(brokers, n.broker)
	}
	return brokers
}

// benchFanoutSequential publishes from the first broker and waits for
// every member (on every node) to have each message before the next.
func benchFanoutSequential(b *testing.B, brokers []Broker, members int) {
	ctx := context.Background()
	var total atomic.Int64
	sig := make(chan struct{}, 1)
	var ms []*seqCounter
	for i := range members {
		m := &seqCounter{total: &total, members: int64(members), sig: sig}
		ms = append(ms, m)
		if err := brokers[i%len(brokers)].Join(ctx, "bench", m); err != nil {
			b.Fatal(err)
		}
	}
	msg := &Message{Kind: KindData, Data: []byte(`{"eventType":"message.created","data":{"text":"hello"}}`)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := brokers[0].Publish(ctx, "bench", msg); err != nil {
			b.Fatal(err)
		}
		for total.Load() < int64(i+1)*int64(members) {
			select {
			case <-sig:
			case <-time.After(10 * time.Second):
				b.Fatalf("message %d: delivered %d", i, total.Load())
			}
		}
	}
	b.StopTimer()
	for i, m := range ms {
		_ = brokers[i%len(brokers)].Leave(ctx, "bench", m)
	}
}

type seqCounter struct {
	total   *atomic.Int64
	members int64
	sig     chan struct{}
}

func (c *seqCounter) Deliver(m *Message) {
	if m.Kind == KindData && c.total.Add(1)%c.members == 0 {
		select {
		case c.sig <- struct{}{}:
		default:
		}
	}
}
