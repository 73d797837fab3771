package main

import (
	"context"
	"fmt"
)

// benchmarks maps a benchmark name to its runner.
var benchmarks = map[string]func(ctx context.Context, args []string) error{}

func runBench(ctx context.Context, args []string) error {
	if len(args) == 0 || benchmarks[args[0]] == nil {
		return fmt.Errorf("want: bench <%v> [flags]", sortedKeys(benchmarks))
	}
	return benchmarks[args[0]](ctx, args[1:])
}
