// Command bot is a chat bot built on the Go client (package client): it
// joins the rooms it is added to and answers /help, /echo <text> and /time
// there, ignoring its own messages and anything that is not a command. It
// reconnects by itself.
//
//	go run ./examples/bot -url ws://127.0.0.1:8080/messaging/ -user helper
//	CHATMUX_URL=wss://chat.example.com/messaging/ CHATMUX_TOKEN=<jwt> go run ./examples/bot
//
// Flags win over the environment: -url (CHATMUX_URL, default
// ws://127.0.0.1:8080/messaging/), -token (CHATMUX_TOKEN: a JWT of the
// example server), -user (CHATMUX_BOT_USER: the development sign-in
// name, default "bot" without a token), -name (CHATMUX_BOT_NAME: the bot's
// username, when the token does not carry it).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg, err := parseFlags(args, os.Getenv)
	if err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg.Logger.Info("bot: starting", "url", cfg.URL, "name", cfg.Name)
	return Run(ctx, cfg)
}

// parseFlags reads the configuration from args, then the environment.
func parseFlags(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("bot", flag.ContinueOnError)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	url := fs.String("url", env("CHATMUX_URL", "ws://127.0.0.1:8080/messaging/"), "the chat server's WebSocket endpoint (CHATMUX_URL)")
	token := fs.String("token", env("CHATMUX_TOKEN", ""), "the bot's access token, a JWT (CHATMUX_TOKEN)")
	user := fs.String("user", env("CHATMUX_BOT_USER", ""), "the development sign-in name, without a token (CHATMUX_BOT_USER; default bot)")
	name := fs.String("name", env("CHATMUX_BOT_NAME", ""), "the bot's username, when the token does not carry it (CHATMUX_BOT_NAME)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("bot: unexpected arguments %q", fs.Args())
	}
	cfg := Config{URL: *url, Token: *token, User: *user, Name: *name}
	if cfg.Token == "" && cfg.User == "" {
		cfg.User = "bot"
	}
	if cfg.Token != "" && cfg.User != "" {
		return Config{}, fmt.Errorf("bot: give a token or a development user name, not both")
	}
	return cfg, nil
}
