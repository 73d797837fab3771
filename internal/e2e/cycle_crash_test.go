package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/config"
	"github.com/billcycle/billcycle/integrations/stripe/stripefake"
	"github.com/billcycle/billcycle/internal/testenv"
	"github.com/billcycle/billcycle/starter"
	"github.com/billcycle/billcycle/store"
	"github.com/billcycle/billcycle/workflows"
)

// TestCycleWorkerCrashDuringEarlyInvoice kills the worker process (SIGKILL)
// while the early-invoice activity's "create invoice" request is in flight
// at Stripe, lets that request complete after the worker is gone, and starts
// a new worker process. The retried activity must converge on the invoice
// the dead worker created: exactly one invoice in Stripe, priced as
// billing.Rate prices the usage, one invoice row in Postgres, and one
// threshold notice in the outbox.
//
// The retry waits for the activity's StartToClose timeout (30 s, set by the
// workflow; the activity does not heartbeat), so the test takes about 40 s.
func TestCycleWorkerCrashDuringEarlyInvoice(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a worker process; about 40 s")
	}
	ctx := context.Background()
	st := testenv.Store(t)
	temporalAddr := testenv.TemporalAddress(t)
	fake := stripefake.New(t)
	bin := buildBillcycle(t)

	taskQueue := fmt.Sprintf("e2e-crash-%d", time.Now().UnixNano())
	workerEnv := workerProcessEnv(t, st, temporalAddr, taskQueue, fake.URL)

	cfg, err := config.Load(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.TemporalAddress, cfg.TaskQueue, cfg.StripeAPIBase = temporalAddr, taskQueue, fake.URL
	tc, err := client.Dial(client.Options{HostPort: temporalAddr, Namespace: cfg.TemporalNamespace})
	if err != nil {
		t.Fatalf("dial temporal: %v", err)
	}
	t.Cleanup(tc.Close)
	key, _, err := st.CreateAPIKey(ctx, "e2e-crash")
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(starter.New(st, tc, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler())
	t.Cleanup(api.Close)
	call := func(method, path, body string, want int) {
		t.Helper()
		if got, out := apiCall(t, api.URL, key, method, path, body); got != want {
			t.Fatalf("%s %s status = %d (%s), want %d", method, path, got, out, want)
		}
	}

	w1 := startWorkerProcess(t, bin, workerEnv, "worker-1")

	// The catalog: a meter and a plan that charges 2 cents a request.
	cust := fmt.Sprintf("crash-%d", time.Now().UnixNano())
	wid := workflows.CustomerWorkflowID(cust)
	call("POST", "/v1/meters", `{"slug":"requests","name":"Requests","event_name":"request","aggregation":"count"}`, 201)
	call("POST", "/v1/plans", `{"id":"metered","name":"Metered","currency":"usd","products":[{"id":"api","name":"API",
		"prices":[{"meter":"requests","model":"per_unit","unit_price":"2"}]}]}`, 201)
	call("POST", "/v1/signups", fmt.Sprintf(`{"customer_id":%q,"email":"ops@%s.test","name":"Crash Co"}`, cust, cust), 201)
	t.Cleanup(func() { _ = tc.TerminateWorkflow(context.Background(), wid, "", "test over") })
	waitStatus(t, tc, wid, 30*time.Second, "onboarded in Stripe", func(s workflows.CycleStatus) bool {
		return strings.HasPrefix(s.StripeCustomerID, "cus_")
	})
	call("PUT", "/v1/customers/"+cust+"/subscription",
		`{"plan_id":"metered","thresholds":{"usage_gte":{"requests":"100"}}}`, 201)
	waitStatus(t, tc, wid, 30*time.Second, "watching the usage threshold", func(s workflows.CycleStatus) bool {
		lvl, ok := s.WatchLevels["requests"]
		return ok && lvl.IntPart() == 100 && s.Status == workflows.StatusActive
	})

	// Hold the invoice lookup, then the invoice creation behind it.
	lookupArrived, releaseLookup := fake.BlockNext("/v1/invoices")
	const events = 150
	call("POST", "/v1/events", eventsBatch(cust, "crash", events, time.Now()), 200)
	waitChan(t, lookupArrived, 30*time.Second, "the early-invoice activity looking up its invoice in Stripe")
	createArrived, releaseCreate := fake.BlockNext("/v1/invoices")
	releaseLookup()
	waitChan(t, createArrived, 10*time.Second, "the early-invoice activity creating its invoice in Stripe")

	w1.kill(t)
	killed := time.Now()
	releaseCreate() // the dead worker's request completes at Stripe; its answer is lost
	waitFor(t, 10*time.Second, "the dead worker's invoice created in Stripe", func() (bool, string) {
		n := 0
		for _, r := range fake.Requests() {
			if r.Method == "POST" && r.Path == "/v1/invoices" && r.Status == 200 {
				n++
			}
		}
		return n == 1 && len(fake.Invoices()) == 1, fmt.Sprintf("%d creates, %d invoices", n, len(fake.Invoices()))
	})

	startWorkerProcess(t, bin, workerEnv, "worker-2")
	waitFor(t, 75*time.Second, "the retried activity finishing the invoice and the notice", func() (bool, string) {
		invs := fake.Invoices()
		ns, _ := st.Notices(ctx, store.NoticeFilter{CustomerID: cust, Kind: "threshold_invoice"})
		done := len(invs) == 1 && invs[0].Status == "open" && len(ns) == 1 && ns[0].Delivered()
		return done, fmt.Sprintf("stripe invoices %+v, notices %+v", invs, ns)
	})
	t.Logf("invoice finished and notice sent %s after the worker was killed", time.Since(killed).Round(100*time.Millisecond))

	// Postgres: exactly one early invoice, issued as the Stripe one.
	stored, err := st.Invoices(ctx, cust)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].Kind != store.KindThreshold || !strings.HasSuffix(stored[0].ID, "/threshold-1") {
		t.Fatalf("stored invoices = %+v, want one threshold invoice ending in /threshold-1", stored)
	}
	inv := stored[0]
	invoiceID := inv.ID

	// What billing.Rate says the usage up to the invoice costs.
	plan, err := st.Plan(ctx, "metered")
	if err != nil {
		t.Fatal(err)
	}
	sub, _, err := st.Subscription(ctx, cust)
	if err != nil {
		t.Fatal(err)
	}
	usageTo := inv.PeriodEnd
	for _, l := range inv.Lines {
		if l.Query != nil {
			usageTo = l.Query.To
		}
	}
	usage, err := st.MeterTotals(ctx, cust, inv.PeriodStart, usageTo)
	if err != nil {
		t.Fatal(err)
	}
	if usage["requests"].IntPart() != events {
		t.Errorf("usage billed = %v requests, want %d", usage["requests"], events)
	}
	want := billing.Rate(plan, sub, billing.Period{Start: inv.PeriodStart, End: inv.PeriodEnd}, usage).Total
	if want != events*2 {
		t.Fatalf("Rate(%d requests at 2 cents) = %d, want %d (test setup)", events, want, events*2)
	}

	// Stripe: exactly one invoice, finalized, its items summing to Rate's total.
	invs := fake.Invoices()
	if len(invs) != 1 {
		t.Fatalf("Stripe invoices = %d, want exactly 1: %+v", len(invs), invs)
	}
	var itemSum int64
	for _, it := range invs[0].Items {
		itemSum += it.Amount
	}
	if itemSum != want || invs[0].Total() != want {
		t.Errorf("Stripe invoice items sum to %d (total %d), want %d as billing.Rate says", itemSum, invs[0].Total(), want)
	}
	if invs[0].Metadata["billcycle_invoice_id"] != invoiceID {
		t.Errorf("Stripe invoice metadata = %v, want billcycle_invoice_id %s", invs[0].Metadata, invoiceID)
	}
	if inv.Total != want || inv.StripeInvoiceID != invs[0].ID || inv.Status != "open" {
		t.Errorf("stored invoice = total %d, stripe %q, status %q; want %d, %q, open", inv.Total, inv.StripeInvoiceID, inv.Status, want, invs[0].ID)
	}

	// The outbox: one threshold notice for that invoice.
	ns, err := st.Notices(ctx, store.NoticeFilter{CustomerID: cust, Kind: "threshold_invoice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].DedupeKey != invoiceID+"/notice" || ns[0].Status != store.NoticeOutbox {
		t.Errorf("threshold notices = %+v, want one in the outbox keyed %s/notice", ns, invoiceID)
	}
	waitStatus(t, tc, wid, 10*time.Second, "one early invoice in the workflow's status", func(s workflows.CycleStatus) bool {
		return s.EarlyInvoices == 1 && s.InvoicedEarly == want
	})
}

// buildBillcycle builds the billcycle binary into a temporary directory.
func buildBillcycle(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Fatalf("find the module root: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "billcycle")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/billcycle")
	cmd.Dir = filepath.Dir(string(bytes.TrimSpace(out)))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/billcycle: %v\n%s", err, b)
	}
	return bin
}

// workerProcessEnv is the environment of a `billcycle worker` process that
// uses st's schema, the given Temporal task queue and Stripe, and the outbox
// for email. Settings inherited from the test's environment are dropped.
func workerProcessEnv(t *testing.T, st *store.Store, temporalAddr, taskQueue, stripeURL string) []string {
	t.Helper()
	var schema string
	if err := st.Pool().QueryRow(context.Background(), "SHOW search_path").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(testenv.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "DATABASE_URL" || strings.HasPrefix(name, "TEMPORAL_") || strings.HasPrefix(name, "STRIPE_") ||
			strings.HasPrefix(name, "SENDGRID_") || strings.HasPrefix(name, "BILLCYCLE_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "DATABASE_URL="+u.String(), "TEMPORAL_ADDRESS="+temporalAddr,
		"BILLCYCLE_TASK_QUEUE="+taskQueue, "STRIPE_API_BASE="+stripeURL, "BILLCYCLE_LOG_LEVEL=warn")
}

// workerProcess is a running `billcycle worker`.
type workerProcess struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

// startWorkerProcess starts `billcycle worker`; it is stopped (and its log
// shown if the test failed) when the test ends.
func startWorkerProcess(t *testing.T, bin string, env []string, name string) *workerProcess {
	t.Helper()
	w := &workerProcess{name: name, cmd: exec.Command(bin, "worker"), out: &lockedBuffer{}, done: make(chan struct{})}
	w.cmd.Env = env
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = w.cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			_ = w.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-w.done:
			case <-time.After(15 * time.Second):
				_ = w.cmd.Process.Kill()
				<-w.done
			}
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, w.out.String())
		}
	})
	return w
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (w *workerProcess) kill(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", w.name, err)
	}
	waitChan(t, w.done, 10*time.Second, w.name+" exiting after SIGKILL")
}

// lockedBuffer is a bytes.Buffer safe for a process's output and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// apiCall sends an authenticated JSON request and returns the status and body.
func apiCall(t *testing.T, base, key, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventsBatch is a POST /v1/events body of n "request" events of customer
// cust, with ids prefixed by prefix, timestamped at.
func eventsBatch(cust, prefix string, n int, at time.Time) string {
	evs := make([]map[string]any, n)
	for i := range evs {
		evs[i] = map[string]any{"id": fmt.Sprintf("%s-%s-%d", prefix, cust, i), "customer_id": cust,
			"name": "request", "timestamp": at.UTC().Format(time.RFC3339Nano)}
	}
	b, _ := json.Marshal(map[string]any{"events": evs})
	return string(b)
}

// waitStatus polls the workflow's status query until ok holds or timeout passes.
func waitStatus(t *testing.T, tc client.Client, wid string, timeout time.Duration, what string, ok func(workflows.CycleStatus) bool) {
	t.Helper()
	waitFor(t, timeout, what, func() (bool, string) {
		qctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, err := tc.QueryWorkflow(qctx, wid, "", workflows.QueryStatus)
		if err != nil {
			return false, err.Error()
		}
		var s workflows.CycleStatus
		if err := v.Get(&s); err != nil {
			return false, err.Error()
		}
		return ok(s), fmt.Sprintf("%+v", s)
	})
}

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %s (last: %s)", what, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitChan waits for ch to be closed, failing the test after timeout.
func waitChan(t *testing.T, ch <-chan struct{}, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("%s: not within %s", what, timeout)
	}
}
