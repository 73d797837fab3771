package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/billcycle/billcycle/store"
	"github.com/billcycle/billcycle/worker"
	"github.com/billcycle/billcycle/workflows"
)

func runDev(ctx context.Context, args []string) error {
	fs := flagSet("dev", "run the whole local stack in one process tree; Ctrl-C stops everything it started")
	dir := fs.String("dir", ".dev", "directory for logs, the Temporal database and the dev API key")
	temporalPort := fs.Int("temporal-port", 7233, "port of the Temporal dev server (reused if already listening)")
	uiPort := fs.Int("ui-port", 8233, "port of the Temporal Web UI")
	stripePort := fs.Int("stripe-port", 12111, "HTTP port of stripe-mock (reused if already listening); HTTPS takes the next one")
	servicesOnly := fs.Bool("services-only", false, "start only Temporal and stripe-mock (and register search attributes), for test runs")
	demo := fs.Bool("demo", true, "sign up a demo customer once the API is up")
	cf := bindConfigFlags(fs, "DATABASE_URL", "BILLCYCLE_HTTP_ADDR", "TEMPORAL_NAMESPACE")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The dev stack wires its own services together unless told otherwise.
	setDefault("TEMPORAL_ADDRESS", "127.0.0.1:"+strconv.Itoa(*temporalPort))
	setDefault("STRIPE_API_BASE", "http://127.0.0.1:"+strconv.Itoa(*stripePort))
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	logger := newLogger(cfg.LogLevel)
	step := 0
	progress := func(msg string) {
		step++
		fmt.Printf("[dev %2d] %s\n", step, msg)
	}

	var s *store.Store
	if !*servicesOnly {
		progress("PostgreSQL: checking " + redactURL(cfg.DatabaseURL))
		s, err = openStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer s.Close()
		done, err := s.Migrate(ctx)
		if err != nil {
			return err
		}
		progress(fmt.Sprintf("PostgreSQL: ok; migrations applied: %d new", len(done)))
	}

	svc, err := startServices(ctx, stackOptions{dir: *dir, temporalPort: *temporalPort, uiPort: *uiPort, stripePort: *stripePort}, progress)
	if err != nil {
		return err
	}
	defer func() {
		progress("stopping what dev started")
		svc.stop()
	}()

	tc, err := dialTemporal(cfg, logger)
	if err != nil {
		return err
	}
	defer tc.Close()
	if err := registerSearchAttributes(ctx, tc, cfg.TemporalNamespace); err != nil {
		return err
	}
	progress("Temporal: search attributes registered (" + strings.Join(sortedKeys(workflows.SearchAttributes), ", ") + ")")

	if *servicesOnly {
		progress("services ready; Ctrl-C stops them")
		<-ctx.Done()
		return nil
	}
	w := worker.New(tc, cfg.TaskQueue, workerDeps(cfg, s))
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer w.Stop()
	progress("worker: polling task queue " + cfg.TaskQueue)

	httpCtx, stopHTTP := context.WithCancel(ctx)
	defer stopHTTP()
	ready := make(chan struct{})
	httpErr := make(chan error, 1)
	go func() { httpErr <- serveHTTP(httpCtx, cfg, s, tc, logger, ready) }()
	<-ready
	if err := waitListening(ctx, cfg.HTTPAddr, nil, 10*time.Second, "the output above"); err != nil {
		return err
	}
	progress("API: listening on http://" + cfg.HTTPAddr)

	key, _, err := s.CreateAPIKey(ctx, "dev "+time.Now().UTC().Format(time.RFC3339))
	if err != nil {
		return err
	}
	keyPath := filepath.Join(*dir, "api-key")
	_ = os.WriteFile(keyPath, []byte(key+"\n"), 0o600)
	if *demo {
		if msg, err := signupDemo(ctx, cfg.HTTPAddr, key); err != nil {
			progress("demo customer: " + err.Error())
		} else {
			progress("demo customer: " + msg)
		}
	}

	fmt.Printf(`
billcycle is running. Ctrl-C stops everything dev started.

  API          http://%[1]s        (Authorization: Bearer <key>)
  Temporal UI  http://127.0.0.1:%[2]d
  Temporal     %[3]s  (temporal workflow list --address %[3]s)
  stripe-mock  %[4]s
  Dev API key  %[5]s  (also in %[6]s)

  curl -H "Authorization: Bearer %[5]s" http://%[1]s/readyz
`, cfg.HTTPAddr, *uiPort, cfg.TemporalAddress, cfg.StripeAPIBase, key, keyPath)

	select {
	case <-ctx.Done():
	case err := <-httpErr:
		return err
	}
	stopHTTP()
	return <-httpErr
}

func setDefault(name, value string) {
	if os.Getenv(name) == "" {
		os.Setenv(name, value)
	}
}

func redactURL(u string) string {
	if i := strings.Index(u, "@"); i > 0 {
		if j := strings.Index(u, "://"); j > 0 && strings.Contains(u[j+3:i], ":") {
			return u[:j+3] + u[j+3:j+3+strings.Index(u[j+3:i], ":")] + ":xxxxx" + u[i:]
		}
	}
	return u
}

// signupDemo signs up the demo customer through the API, as a client would.
func signupDemo(ctx context.Context, addr, key string) (string, error) {
	body, _ := json.Marshal(map[string]any{"customer_id": "demo", "email": "demo@example.com", "name": "Demo Customer", "plan": "starter",
		"metadata": map[string]string{"source": "billcycle dev"}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/signups", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return "", fmt.Errorf("signup answered %s: %s", resp.Status, out)
	}
	var r struct {
		WorkflowID string `json:"workflow_id"`
		Created    bool   `json:"created"`
	}
	_ = json.Unmarshal(out, &r)
	return fmt.Sprintf("customer demo, workflow %s (new: %v)", r.WorkflowID, r.Created), nil
}
