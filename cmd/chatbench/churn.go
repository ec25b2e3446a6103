package main

import "context"

func runChurn(ctx context.Context, o *options) (*report, error) { return nil, errTODO }
