package metrics_test

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/groups"
	"github.com/chatmux/chatmux/middleware"
	"github.com/chatmux/chatmux/middleware/metrics"
)

// One Metrics value wired into the three hooks of a server: the event
// middleware, the server's Observer and the hub's OnDeliver.
func ExampleNew() {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)

	events := chatmux.NewRouter()
	events.Use(middleware.Recoverer, m.Middleware)
	events.HandleFunc("ping", func(c *chatmux.Context) error { return c.Send("pong", nil) })

	broker := groups.NewMemory()
	broker.Hub().OnDeliver = m.Delivered
	srv := chatmux.NewServer(events, chatmux.ServerOptions{Broker: broker, Observer: m})

	mux := http.NewServeMux()
	mux.Handle("/messaging/", srv)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	_ = mux // http.ListenAndServe("127.0.0.1:8080", mux)
}
