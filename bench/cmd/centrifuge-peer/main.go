// Command centrifuge-peer serves the Centrifuge peer of the broadcast
// benchmark (package github.com/chatmux/chatmux/bench/peer) on a loopback
// address until SIGINT or SIGTERM:
//
//	centrifuge-peer -addr 127.0.0.1:8001 [-max-messages-in-frame N] [-write-delay D]
//
// Clients connect to ws://ADDR/connection/websocket?user=<id>, subscribe to
// room:<id> and publish into it with Centrifuge's JSON protocol.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/chatmux/chatmux/bench/peer"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "centrifuge-peer:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return peer.Main(ctx, args, log.New(os.Stderr, "", log.LstdFlags))
}
