package memory_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/chatmux/chatmux/store"
	"github.com/chatmux/chatmux/store/memory"
	"github.com/chatmux/chatmux/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(testing.TB) store.Store { return memory.New() })
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(testing.TB) store.Store { return memory.New() })
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
