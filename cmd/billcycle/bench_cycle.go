package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/billcycle/billcycle/integrations/stripe"
	"github.com/billcycle/billcycle/integrations/stripe/stripefake"
	"github.com/billcycle/billcycle/starter"
	"github.com/billcycle/billcycle/worker"
	"github.com/billcycle/billcycle/workflows"
)

func init() {
	benchmarks["cycle"] = benchCycle
}

// benchCycle measures the BillingCycle workflow on a real Temporal server:
// (a) the time from POSTing events that cross a usage threshold to the
// Stripe invoice request, (b) the worker's memory per cached idle workflow,
// (c) the history length of the customers afterwards. It runs its own
// worker, API and Stripe recorder in-process, on its own schema and task
// queue, and terminates its workflows at the end.
func benchCycle(ctx context.Context, args []string) error {
	fs := flagSet("bench cycle", "threshold-to-invoice latency, memory per cached workflow and history length of BillingCycle")
	cf := bindConfigFlags(fs, "DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE")
	customers := fs.Int("customers", 50, "customers with a usage threshold for the latency run")
	idle := fs.Int("idle", 2000, "idle customer workflows for the memory run (0 skips it)")
	threshold := fs.Int("threshold", 100, "usage threshold (requests); each customer's batch has 20 more events")
	gap := fs.Duration("gap", 200*time.Millisecond, "pause between two customers' crossing batches")
	concurrency := fs.Int("concurrency", 32, "signups and status polls in flight")
	stripeURL := fs.String("stripe-url", "", "Stripe API to record in front of (e.g. stripe-mock's URL); empty runs the in-process stripefake, whose records then count in the memory figure")
	keep := fs.Bool("keep", false, "keep the benchmark schema and leave the workflows running")
	verbose := fs.Bool("v", false, "show the Temporal SDK's log (activity errors such as a customer's expected NoSubscription)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	// Email goes to the outbox and nothing leaves the machine.
	cfg.SendGridAPIKey, cfg.SalesSlackWebhook, cfg.SalesEmail, cfg.AccessWebhookURL = "", "", "", ""
	cfg.TaskQueue = "bench-cycle-" + randomHex(4)

	db, err := openBenchDB(ctx, cfg, 24, *keep)
	if err != nil {
		return err
	}
	defer db.close()
	sdkLog := "error+8" // above every level: silent
	if *verbose {
		sdkLog = "warn"
	}
	tc, err := dialTemporal(cfg, newLogger(sdkLog))
	if err != nil {
		return err
	}
	defer tc.Close()
	if err := registerSearchAttributes(ctx, tc, cfg.TemporalNamespace); err != nil {
		return err
	}

	rec, closeRec, err := newInvoiceRecorder(*stripeURL)
	if err != nil {
		return err
	}
	defer closeRec()
	cfg.StripeAPIBase = rec.url

	sdkworker.SetStickyWorkflowCacheSize(max(10000, *idle+*customers+100))
	w := worker.New(tc, cfg.TaskQueue, worker.Deps{Store: db.st, Stripe: stripe.New(cfg.StripeAPIKey, rec.url, &http.Client{Timeout: 30 * time.Second}),
		Notices: worker.NoticeConfigFrom(cfg)})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer w.Stop()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: starter.New(db.st, tc, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler()}
	go srv.Serve(ln)                         //nolint:errcheck // ends with Shutdown
	defer srv.Shutdown(context.Background()) //nolint:errcheck
	key, _, err := db.st.CreateAPIKey(ctx, "bench-cycle")
	if err != nil {
		return err
	}
	b := &cycleBench{api: "http://" + ln.Addr().String(), key: key, tc: tc, run: randomHex(3), conc: *concurrency}

	fmt.Printf("bench cycle: temporal %s, task queue %s, schema %s, stripe %s\n", cfg.TemporalAddress, cfg.TaskQueue, db.schema, rec.describe)
	if err := b.catalog(); err != nil {
		return err
	}
	defer func() {
		if !*keep {
			b.terminateAll()
		}
	}()

	if err := b.latency(ctx, rec, *customers, *threshold, *gap); err != nil {
		return err
	}
	if *idle > 0 {
		if err := b.memory(ctx, *idle); err != nil {
			return err
		}
	}
	return b.cost(ctx)
}

// cycleBench holds one run's API, client and the customers it created.
type cycleBench struct {
	api, key, run string
	tc            client.Client
	conc          int

	thresholds []string // customers of the latency run
	idle       []string // customers of the memory run
}

func (b *cycleBench) catalog() error {
	if err := b.call("POST", "/v1/meters", `{"slug":"requests","name":"Requests","event_name":"request","aggregation":"count"}`, 201); err != nil {
		return err
	}
	return b.call("POST", "/v1/plans", `{"id":"metered","name":"Metered","currency":"usd","products":[{"id":"api","name":"API",
		"prices":[{"meter":"requests","model":"per_unit","unit_price":"2"}]}]}`, 201)
}

// latency signs up n customers with a usage threshold, waits until each
// workflow watches it, then POSTs each one's crossing batch, gap apart, and
// reports the time from each POST to its Stripe invoice request.
func (b *cycleBench) latency(ctx context.Context, rec *invoiceRecorder, n, threshold int, gap time.Duration) error {
	fmt.Printf("\n(a) latency: %d customers with usage threshold %d requests\n", n, threshold)
	start := time.Now()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%s-t%04d", b.run, i)
	}
	b.thresholds = ids
	err := b.each(ids, b.conc, func(id string) error {
		if err := b.call("POST", "/v1/signups", fmt.Sprintf(`{"customer_id":%q,"email":"ops@%s.test","name":"Bench"}`, id, id), 201); err != nil {
			return err
		}
		body := fmt.Sprintf(`{"plan_id":"metered","thresholds":{"usage_gte":{"requests":"%d"}}}`, threshold)
		return b.call("PUT", "/v1/customers/"+id+"/subscription", body, 201)
	})
	if err != nil {
		return err
	}
	err = b.each(ids, 4, func(id string) error {
		return b.waitStatus(ctx, id, 2*time.Minute, func(s workflows.CycleStatus) bool {
			lvl, ok := s.WatchLevels["requests"]
			return ok && lvl.IntPart() == int64(threshold)
		})
	})
	if err != nil {
		return err
	}
	fmt.Printf("  set up (signup, subscription, watch level stored) in %s\n", time.Since(start).Round(time.Millisecond))

	sent := make(map[string]time.Time, n)
	var postTimes []time.Duration
	for _, id := range ids {
		t0 := time.Now()
		if err := b.call("POST", "/v1/events", crossingBatch(id, threshold+20, t0), 200); err != nil {
			return err
		}
		sent[id] = t0
		postTimes = append(postTimes, time.Since(t0))
		time.Sleep(gap)
	}
	deadline := time.Now().Add(time.Minute)
	var lat []time.Duration
	missing := 0
	for _, id := range ids {
		at, ok := rec.wait(id, deadline)
		if !ok {
			missing++
			continue
		}
		lat = append(lat, at.Sub(sent[id]))
	}
	p50, p95 := percentiles(lat)
	pp50, pp95 := percentiles(postTimes)
	fmt.Printf("  POST /v1/events (%d events) answered: p50 %s  p95 %s\n", threshold+20, dur(pp50), dur(pp95))
	fmt.Printf("  events POSTed -> Stripe invoice request: p50 %s  p95 %s  max %s  (%d of %d arrived; target p95 < 5 s)\n",
		dur(p50), dur(p95), dur(slices.Max(append(lat, 0))), len(lat), n)
	if missing > 0 {
		return fmt.Errorf("%d of %d customers' invoices did not reach Stripe within a minute", missing, n)
	}
	return nil
}

// memory starts k idle customers (a plan, no usage), waits until each has
// run its first check, and reports the growth of the heap per workflow.
func (b *cycleBench) memory(ctx context.Context, k int) error {
	fmt.Printf("\n(b) memory: %d idle customer workflows in the worker's cache\n", k)
	before := settledMemStats()
	start := time.Now()
	ids := make([]string, k)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%s-i%05d", b.run, i)
	}
	b.idle = ids
	err := b.each(ids, b.conc, func(id string) error {
		return b.call("POST", "/v1/signups", fmt.Sprintf(`{"customer_id":%q,"email":"ops@%s.test","name":"Idle","plan":"metered"}`, id, id), 201)
	})
	if err != nil {
		return err
	}
	fmt.Printf("  %d signed up in %s\n", k, time.Since(start).Round(time.Millisecond))
	// Status queries take the worker's workflow-task pollers, so few at a time.
	err = b.each(ids, 4, func(id string) error {
		return b.waitStatus(ctx, id, 10*time.Minute, func(s workflows.CycleStatus) bool {
			return s.Status == workflows.StatusActive && !s.PeriodEnd.IsZero() && !s.LastCheck.IsZero()
		})
	})
	if err != nil {
		return err
	}
	fmt.Printf("  all %d active and checked once in %s\n", k, time.Since(start).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // let the last activity completions land
	after := settledMemStats()
	per := func(a, b uint64) string {
		return fmt.Sprintf("%+.1f MiB total, %.1f KiB per workflow", float64(int64(a)-int64(b))/(1<<20), float64(int64(a)-int64(b))/1024/float64(k))
	}
	fmt.Printf("  heap in use (HeapInuse):   %s\n", per(after.HeapInuse, before.HeapInuse))
	fmt.Printf("  live heap (HeapAlloc):     %s\n", per(after.HeapAlloc, before.HeapAlloc))
	fmt.Printf("  goroutine stacks:          %s\n", per(after.StackInuse, before.StackInuse))
	fmt.Printf("  goroutines:                %+d (%.1f per workflow)\n", after.goroutines-before.goroutines,
		float64(after.goroutines-before.goroutines)/float64(k))
	return nil
}

// cost reports the history length and activity runs of the customers.
func (b *cycleBench) cost(ctx context.Context) error {
	fmt.Printf("\n(c) cost: history of the customers after the run\n")
	for _, group := range []struct {
		name string
		ids  []string
	}{{"threshold customers (one early invoice)", b.thresholds}, {"idle customers", b.idle}} {
		if len(group.ids) == 0 {
			continue
		}
		var lengths []int64
		for _, id := range group.ids {
			d, err := b.tc.DescribeWorkflowExecution(ctx, workflows.CustomerWorkflowID(id), "")
			if err != nil {
				return fmt.Errorf("describe %s: %w", id, err)
			}
			lengths = append(lengths, d.WorkflowExecutionInfo.HistoryLength)
		}
		slices.Sort(lengths)
		runs, err := b.activityRuns(ctx, workflows.CustomerWorkflowID(group.ids[0]))
		if err != nil {
			return err
		}
		fmt.Printf("  %s: history length min %d  median %d  max %d events; %s ran %s\n", group.name,
			lengths[0], lengths[len(lengths)/2], lengths[len(lengths)-1], group.ids[0], runs)
	}
	return nil
}

// activityRuns counts the activity tasks scheduled in a workflow's current
// run, by activity type.
func (b *cycleBench) activityRuns(ctx context.Context, wid string) (string, error) {
	counts := map[string]int{}
	total := 0
	it := b.tc.GetWorkflowHistory(ctx, wid, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return "", fmt.Errorf("history of %s: %w", wid, err)
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			counts[a.GetActivityType().GetName()]++
			total++
		}
	}
	var parts []string
	for _, name := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%s %d", name, counts[name]))
	}
	return fmt.Sprintf("%d activities (%s)", total, strings.Join(parts, ", ")), nil
}

// terminateAll ends every workflow the run started.
func (b *cycleBench) terminateAll() {
	ids := append(slices.Clone(b.thresholds), b.idle...)
	_ = b.each(ids, b.conc, func(id string) error {
		_ = b.tc.TerminateWorkflow(context.Background(), workflows.CustomerWorkflowID(id), "", "bench cycle over")
		return nil
	})
}

// each runs fn for every id, conc at a time, and returns the first error.
func (b *cycleBench) each(ids []string, conc int, fn func(id string) error) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, max(1, conc))
	for _, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(id); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// call sends an authenticated API request and checks its status.
func (b *cycleBench) call(method, path, body string, want int) error {
	req, err := http.NewRequest(method, b.api+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d (%s), want %d", method, path, resp.StatusCode, bytes.TrimSpace(out), want)
	}
	return nil
}

// waitStatus polls the customer's status query until ok holds.
func (b *cycleBench) waitStatus(ctx context.Context, id string, timeout time.Duration, ok func(workflows.CycleStatus) bool) error {
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		v, err := b.tc.QueryWorkflow(qctx, workflows.CustomerWorkflowID(id), "", workflows.QueryStatus)
		cancel()
		if err == nil {
			var s workflows.CycleStatus
			if err = v.Get(&s); err == nil {
				if ok(s) {
					return nil
				}
				last = fmt.Sprintf("status %s, watch levels %v, last error %q", s.Status, s.WatchLevels, s.LastError)
			}
		}
		if err != nil {
			last = err.Error()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("customer %s not ready after %s: %s", id, timeout, last)
}

// crossingBatch is a POST /v1/events body of n "request" events of customer id.
func crossingBatch(id string, n int, at time.Time) string {
	evs := make([]map[string]any, n)
	for i := range evs {
		evs[i] = map[string]any{"id": fmt.Sprintf("%s-%d", id, i), "customer_id": id, "name": "request",
			"timestamp": at.UTC().Format(time.RFC3339Nano)}
	}
	body, _ := json.Marshal(map[string]any{"events": evs})
	return string(body)
}

// memStats is the memory of the process after a forced collection.
type memStats struct {
	runtime.MemStats
	goroutines int
}

func settledMemStats() memStats {
	runtime.GC()
	runtime.GC()
	var m memStats
	runtime.ReadMemStats(&m.MemStats)
	m.goroutines = runtime.NumGoroutine()
	return m
}

func dur(d time.Duration) string { return d.Round(time.Millisecond).String() }

// invoiceRecorder is a Stripe API in front of another one (stripe-mock, or
// the in-process stripefake) that records when each customer's first
// invoice-create request arrives.
type invoiceRecorder struct {
	url, describe string
	proxy         *httputil.ReverseProxy

	mu      sync.Mutex
	arrived map[string]time.Time
	changed chan struct{}
}

func newInvoiceRecorder(upstream string) (*invoiceRecorder, func(), error) {
	r := &invoiceRecorder{arrived: map[string]time.Time{}, changed: make(chan struct{})}
	var closers []func()
	if upstream == "" {
		tb := &cleanupTB{}
		fake := stripefake.New(tb)
		closers = append(closers, tb.runCleanups)
		upstream, r.describe = fake.URL, "in-process stripefake (its records count in the memory figures)"
	} else {
		r.describe = upstream
	}
	target, err := url.Parse(upstream)
	if err != nil || target.Host == "" {
		return nil, nil, fmt.Errorf("stripe url %q: want http://host:port", upstream)
	}
	r.proxy = httputil.NewSingleHostReverseProxy(target)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: r}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	r.url = "http://" + ln.Addr().String()
	closers = append([]func(){func() { _ = srv.Close() }}, closers...)
	return r, func() {
		for _, c := range closers {
			c()
		}
	}, nil
}

// ServeHTTP records an invoice creation's arrival, then forwards the request.
func (r *invoiceRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodPost && req.URL.Path == "/v1/invoices" {
		at := time.Now()
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		// Our invoice ids are customer/<customer>/<period>/<kind>.
		if parts := strings.Split(form.Get("metadata[billcycle_invoice_id]"), "/"); len(parts) > 2 && parts[0] == "customer" {
			r.mu.Lock()
			if _, seen := r.arrived[parts[1]]; !seen {
				r.arrived[parts[1]] = at
				close(r.changed)
				r.changed = make(chan struct{})
			}
			r.mu.Unlock()
		}
	}
	r.proxy.ServeHTTP(w, req)
}

// wait returns when customer's first invoice request arrived, waiting until deadline.
func (r *invoiceRecorder) wait(customer string, deadline time.Time) (time.Time, bool) {
	for {
		r.mu.Lock()
		at, ok := r.arrived[customer]
		changed := r.changed
		r.mu.Unlock()
		if ok {
			return at, true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return time.Time{}, false
		}
		select {
		case <-changed:
		case <-time.After(left):
		}
	}
}

// cleanupTB lets the benchmark run stripefake, which wants a testing.TB only
// to register its shutdown; no other method is called.
type cleanupTB struct {
	testing.TB
	cleanups []func()
}

func (c *cleanupTB) Cleanup(f func()) { c.cleanups = append(c.cleanups, f) }

func (c *cleanupTB) runCleanups() {
	for _, f := range slices.Backward(c.cleanups) {
		f()
	}
}
