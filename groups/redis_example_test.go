package groups_test

import (
	"log"
	"net/http"
	"time"

	"github.com/chatmux/chatmux"
	"github.com/chatmux/chatmux/groups"
)

// Several chatmux nodes behind a load balancer share one Redis: each runs
// the same program with a Redis broker.
func ExampleNewRedisURL() {
	broker, err := groups.NewRedisURL("redis://127.0.0.1:6379/0", groups.RedisOptions{
		Prefix:         "myapp:", // several deployments can share one Redis
		PublishTimeout: time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	events := chatmux.NewRouter()
	events.HandleFunc("room.join", func(c *chatmux.Context) error {
		return c.Join(groups.Room("lobby")) // waits until this node is subscribed
	})
	srv := chatmux.NewServer(events, chatmux.ServerOptions{Broker: broker})
	http.Handle("/messaging/", srv)
	log.Fatal(http.ListenAndServe(":8080", nil))
}

// A broker that can lose contact with the other nodes says so: a server
// checks for Availability and, between false and true, knows that its
// connections may have missed messages published on other nodes.
func ExampleRedis_OnAvailability() {
	broker, err := groups.NewRedisURL("redis://127.0.0.1:6379/0", groups.RedisOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	var b groups.Broker = broker
	if a, ok := b.(groups.Availability); ok {
		a.OnAvailability(func(available bool) {
			if !available {
				log.Print("broker lost: messages from other nodes may be missed from now on")
				return
			}
			log.Print("broker back, every subscription confirmed: tell the connections to catch up")
		})
	}
}
