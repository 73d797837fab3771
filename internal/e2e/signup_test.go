// Package e2e holds end-to-end tests that run billcycle's API, worker and
// workflows against the real Temporal dev server, PostgreSQL and stripe-mock.
package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/billcycle/billcycle/config"
	"github.com/billcycle/billcycle/integrations/stripe"
	"github.com/billcycle/billcycle/internal/testenv"
	"github.com/billcycle/billcycle/starter"
	"github.com/billcycle/billcycle/store"
	"github.com/billcycle/billcycle/worker"
	"github.com/billcycle/billcycle/workflows"
)

// stack is one isolated billcycle: its own schema, task queue and API server
// over the shared Temporal dev server and stripe-mock.
type stack struct {
	store *store.Store
	tc    client.Client
	api   *httptest.Server
	key   string
	cfg   config.Config
}

func newStack(t *testing.T) *stack {
	t.Helper()
	st := testenv.Store(t)
	cfg, err := config.Load(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.TemporalAddress = testenv.TemporalAddress(t)
	cfg.StripeAPIBase = testenv.StripeMockURL(t)
	cfg.TaskQueue = fmt.Sprintf("e2e-%s-%d", t.Name(), time.Now().UnixNano())
	tc, err := client.Dial(client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace})
	if err != nil {
		t.Fatalf("dial temporal: %v", err)
	}
	t.Cleanup(tc.Close)
	w := worker.New(tc, cfg.TaskQueue, worker.Deps{Store: st, Stripe: stripe.New(cfg.StripeAPIKey, cfg.StripeAPIBase, nil)})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	api := httptest.NewServer(starter.New(st, tc, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler())
	t.Cleanup(api.Close)
	key, _, err := st.CreateAPIKey(context.Background(), "e2e")
	if err != nil {
		t.Fatal(err)
	}
	return &stack{store: st, tc: tc, api: api, key: key, cfg: cfg}
}

func (s *stack) post(t *testing.T, path, body string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", s.api.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// eventually polls cond until it holds or 20 s pass.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after 20s (last: %s)", what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestSignupEndToEnd(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	id := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
	body := fmt.Sprintf(`{"customer_id":%q,"email":"ops@%s.test","name":"E2E","plan":"pro"}`, id, id)
	if status := s.post(t, "/v1/signups", body); status != 201 {
		t.Fatalf("signup status = %d, want 201", status)
	}
	wid := workflows.CustomerWorkflowID(id)
	t.Cleanup(func() { _ = s.tc.TerminateWorkflow(context.Background(), wid, "", "test over") })

	eventually(t, "workflow active with a Stripe customer", func() (bool, string) {
		v, err := s.tc.QueryWorkflow(ctx, wid, "", workflows.QueryStatus)
		if err != nil {
			return false, err.Error()
		}
		var st workflows.CycleStatus
		_ = v.Get(&st)
		return st.Status == workflows.StatusActive && strings.HasPrefix(st.StripeCustomerID, "cus_"), fmt.Sprintf("%+v", st)
	})
	c, err := s.store.Customer(ctx, id)
	if err != nil || !strings.HasPrefix(c.StripeCustomerID, "cus_") {
		t.Errorf("stored customer = %+v, %v; want a Stripe customer id", c, err)
	}

	if status := s.post(t, "/v1/signups", body); status != 200 {
		t.Errorf("repeat signup status = %d, want 200", status)
	}
	if status := s.post(t, "/v1/signups", `{"customer_id":"x"}`); status != 400 {
		t.Errorf("malformed signup status = %d, want 400", status)
	}

	// Exactly one run, findable by the CustomerId search attribute (visibility is eventually consistent).
	eventually(t, "one workflow listed by CustomerId", func() (bool, string) {
		resp, err := s.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: s.cfg.TemporalNamespace, Query: fmt.Sprintf("CustomerId = '%s'", id)})
		if err != nil {
			return false, err.Error()
		}
		n := len(resp.Executions)
		return n == 1 && resp.Executions[0].Status == enums.WORKFLOW_EXECUTION_STATUS_RUNNING, fmt.Sprintf("%d executions", n)
	})
}
