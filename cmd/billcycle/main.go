// Command billcycle is the one binary of the billcycle billing service: the
// local stack (dev), the Temporal worker, the HTTP API (serve), database
// migrations, API keys and benchmarks.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/billcycle/billcycle/config"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"dev", "run the whole local stack: Postgres check, Temporal dev server, stripe-mock, migrations, worker, API, demo customer", runDev},
		{"worker", "run the Temporal worker (workflows and activities)", runWorker},
		{"serve", "run the HTTP API", runServe},
		{"migrate", "apply database migrations (repeatable)", runMigrate},
		{"apikey", "manage API keys: apikey create NAME | apikey revoke ID", runAPIKey},
		{"bench", "run benchmarks that print figures: bench ingest | bench query | bench cycle", runBench},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "billcycle:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("missing command")
		}
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:])
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "billcycle: usage-based billing on Temporal, Stripe and Postgres.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: billcycle <command> [flags]   (billcycle <command> --help for its flags)")
	fmt.Fprintln(w)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	envHelp(w)
}

func envHelp(w io.Writer) {
	fmt.Fprintln(w, "Environment (flags override):")
	for _, v := range config.Vars {
		def := v.Default
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(w, "  %-30s %s\n  %-30s default: %s\n", v.Name, v.Help, "", def)
	}
}

// flagSet makes a FlagSet whose --help explains the command, its flags and
// the environment.
func flagSet(name, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "billcycle %s: %s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
		fmt.Fprintln(w)
		envHelp(w)
	}
	return fs
}

// configFlags binds flags that override the environment's settings.
type configFlags struct {
	set map[string]*string
}

func bindConfigFlags(fs *flag.FlagSet, names ...string) *configFlags {
	cf := &configFlags{set: map[string]*string{}}
	for _, n := range names {
		for _, v := range config.Vars {
			if v.Name == n {
				flagName := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(n, "BILLCYCLE_")), "_", "-")
				cf.set[n] = fs.String(flagName, "", v.Help+" (env "+n+")")
			}
		}
	}
	return cf
}

// load reads the configuration from the environment with flags on top.
func (cf *configFlags) load() (config.Config, error) {
	return config.Load(func(name string) (string, bool) {
		if p, ok := cf.set[name]; ok && *p != "" {
			return *p, true
		}
		return os.LookupEnv(name)
	})
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// sortedKeys returns m's keys in order, for stable output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
