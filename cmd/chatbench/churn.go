package main

import (
	"context"
	"errors"
)

func runChurn(ctx context.Context, o *options) (*report, error) { return nil, errors.New("not implemented yet") }
