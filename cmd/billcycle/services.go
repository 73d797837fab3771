package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/billcycle/billcycle/config"
	"github.com/billcycle/billcycle/integrations/stripe"
	"github.com/billcycle/billcycle/starter"
	"github.com/billcycle/billcycle/store"
	"github.com/billcycle/billcycle/worker"
	"github.com/billcycle/billcycle/workflows"
)

func openStore(ctx context.Context, cfg config.Config) (*store.Store, error) {
	if err := store.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return nil, fmt.Errorf("%w\n  is PostgreSQL running? start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start", err)
	}
	return store.Open(ctx, cfg.DatabaseURL)
}

func dialTemporal(cfg config.Config, logger *slog.Logger) (client.Client, error) {
	c, err := client.Dial(client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    log.NewStructuredLogger(logger.With("component", "temporal")),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (TEMPORAL_ADDRESS): %w", cfg.TemporalAddress, err)
	}
	return c, nil
}

// registerSearchAttributes adds billcycle's custom search attributes to the
// namespace, leaving those already there.
func registerSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	op := c.OperatorService()
	have, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: map[string]enums.IndexedValueType{}}
	for _, name := range sortedKeys(workflows.SearchAttributes) {
		if _, ok := have.CustomAttributes[name]; !ok {
			missing.SearchAttributes[name] = workflows.SearchAttributes[name]
		}
	}
	if len(missing.SearchAttributes) == 0 {
		return nil
	}
	_, err = op.AddSearchAttributes(ctx, missing)
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}

func newStripe(cfg config.Config) *stripe.Client {
	return stripe.New(cfg.StripeAPIKey, cfg.StripeAPIBase, &http.Client{Timeout: 30 * time.Second})
}

func workerDeps(cfg config.Config, st *store.Store) worker.Deps {
	return worker.Deps{Store: st, Stripe: newStripe(cfg), Notices: worker.NoticeConfigFrom(cfg)}
}

// serveHTTP runs the API until ctx ends, then shuts down gracefully: it stops
// accepting, lets requests in flight finish (up to 20 s), and returns.
func serveHTTP(ctx context.Context, cfg config.Config, st *store.Store, tc client.Client, logger *slog.Logger, ready chan<- struct{}) error {
	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           starter.New(st, tc, cfg, logger).Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	if ready != nil {
		close(ready)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("http server on %s (BILLCYCLE_HTTP_ADDR): %w", cfg.HTTPAddr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

func runMigrate(ctx context.Context, args []string) error {
	fs := flagSet("migrate", "apply the embedded database migrations; running it again applies nothing")
	cf := bindConfigFlags(fs, "DATABASE_URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	done, err := st.Migrate(ctx)
	for _, m := range done {
		fmt.Println("applied", m)
	}
	if err == nil && len(done) == 0 {
		fmt.Println("schema is up to date")
	}
	return err
}

func runWorker(ctx context.Context, args []string) error {
	fs := flagSet("worker", "run the Temporal worker that executes billcycle's workflows and activities")
	cf := bindConfigFlags(fs, "DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "BILLCYCLE_TASK_QUEUE", "STRIPE_API_BASE")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return withRuntime(ctx, cf, func(cfg config.Config, st *store.Store, tc client.Client, logger *slog.Logger) error {
		logger.Info("worker running", "task_queue", cfg.TaskQueue, "temporal", cfg.TemporalAddress)
		return worker.Run(ctx, tc, cfg.TaskQueue, workerDeps(cfg, st))
	})
}

func runServe(ctx context.Context, args []string) error {
	fs := flagSet("serve", "run the HTTP API (JSON under /v1, Bearer API keys)")
	cf := bindConfigFlags(fs, "BILLCYCLE_HTTP_ADDR", "DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "STRIPE_WEBHOOK_SECRET")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return withRuntime(ctx, cf, func(cfg config.Config, st *store.Store, tc client.Client, logger *slog.Logger) error {
		logger.Info("API listening", "addr", "http://"+cfg.HTTPAddr)
		return serveHTTP(ctx, cfg, st, tc, logger, nil)
	})
}

// withRuntime loads the configuration, opens the store and dials Temporal,
// runs fn, and closes both afterwards.
func withRuntime(ctx context.Context, cf *configFlags, fn func(config.Config, *store.Store, client.Client, *slog.Logger) error) error {
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	logger := newLogger(cfg.LogLevel)
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	tc, err := dialTemporal(cfg, logger)
	if err != nil {
		return err
	}
	defer tc.Close()
	return fn(cfg, st, tc, logger)
}

func runAPIKey(ctx context.Context, args []string) error {
	fs := flagSet("apikey", "create NAME: make an API key (printed once, stored hashed); revoke ID: revoke one")
	cf := bindConfigFlags(fs, "DATABASE_URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) != 2 || (rest[0] != "create" && rest[0] != "revoke") {
		fs.Usage()
		return errors.New("want: apikey create NAME | apikey revoke ID")
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return err
	}
	if rest[0] == "revoke" {
		var id int64
		if _, err := fmt.Sscan(rest[1], &id); err != nil {
			return fmt.Errorf("want a numeric key id, got %q", rest[1])
		}
		return st.RevokeAPIKey(ctx, id)
	}
	key, rec, err := st.CreateAPIKey(ctx, rest[1])
	if err != nil {
		return err
	}
	fmt.Printf("%s\n", key)
	fmt.Fprintf(os.Stderr, "created API key %d (%s...) named %q; it is shown only this once\n", rec.ID, rec.Prefix, rec.Name)
	return nil
}
