package main

import (
	"context"
	"errors"
	"io"
)

var errTODO = errors.New("not implemented yet")

func runConnect(ctx context.Context, o *options) (*report, error) { return nil, errTODO }

func runConnectWorker(ctx context.Context, o *options, out io.Writer) error { return errTODO }
