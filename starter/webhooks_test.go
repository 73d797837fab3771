package starter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
	"go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/config"
	"github.com/billcycle/billcycle/internal/testenv"
	"github.com/billcycle/billcycle/store"
	"github.com/billcycle/billcycle/workflows"
)

const testWebhookSecret = "whsec_test_secret"

// dunningTemporal is a recording Temporal fake for the webhook and dunning
// routes: it signals-with-start, signals only workflows it started (else
// NotFound, like the server), and lists the running Dunning workflows.
type dunningTemporal struct {
	fakeTemporal
	mu        sync.Mutex
	running   map[string]workflows.DunningInput
	starts    []string // workflow id + " " + signal
	opts      []client.StartWorkflowOptions
	signalled []string // workflow id + " " + signal
	args      []any
	lastQuery string
}

func (f *dunningTemporal) SignalWithStartWorkflow(_ context.Context, id, signal string, _ any, o client.StartWorkflowOptions,
	_ any, args ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts = append(f.starts, id+" "+signal)
	f.opts = append(f.opts, o)
	if _, ok := f.running[id]; !ok {
		f.running[id] = args[0].(workflows.DunningInput)
	}
	return fakeRun{id, "run-" + id}, nil
}

func (f *dunningTemporal) SignalWorkflow(_ context.Context, id, _, name string, arg any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.running[id]; !ok {
		return serviceerror.NewNotFound("workflow not found for ID: " + id)
	}
	f.signalled = append(f.signalled, id+" "+name)
	f.args = append(f.args, arg)
	return nil
}

func (f *dunningTemporal) ExecuteWorkflow(ctx context.Context, o client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	f.running[o.ID] = workflows.DunningInput{}
	f.mu.Unlock()
	return f.fakeTemporal.ExecuteWorkflow(ctx, o, wf, args...)
}

func (f *dunningTemporal) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastQuery = req.Query
	resp := &workflowservice.ListWorkflowExecutionsResponse{}
	for id, in := range f.running {
		if strings.HasPrefix(id, "dunning/") && strings.Contains(req.Query, "'"+in.PlanID+"'") {
			resp.Executions = append(resp.Executions, &workflow.WorkflowExecutionInfo{Execution: &common.WorkflowExecution{WorkflowId: id}})
		}
	}
	return resp, nil
}

func (f *dunningTemporal) record() (starts, signals []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.starts), slices.Clone(f.signalled)
}

type webhookTest struct {
	*apiTest
	st *store.Store
	tc *dunningTemporal
}

func newWebhookTest(t *testing.T, secret string) *webhookTest {
	t.Helper()
	st := testenv.Store(t)
	cfg, err := config.Load(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.StripeWebhookSecret = secret
	tc := &dunningTemporal{running: map[string]workflows.DunningInput{}}
	srv := httptest.NewServer(New(st, tc, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler())
	t.Cleanup(srv.Close)
	key, _, err := st.CreateAPIKey(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := st.CreateCustomer(ctx, store.Customer{ID: "acme", Email: "billing@acme.test", Plan: "pro"}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetStripeCustomerID(ctx, "acme", "cus_acme"); err != nil {
		t.Fatal(err)
	}
	return &webhookTest{apiTest: &apiTest{t: t, srv: srv, key: key}, st: st, tc: tc}
}

var whT0 = time.Now().UTC().Truncate(time.Second).Add(-time.Hour)

// event renders a Stripe event; created is seconds after whT0.
func event(id, typ string, created int, object map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": "2099-01-01.preview",
		"created": whT0.Unix() + int64(created), "type": typ, "data": map[string]any{"object": object}})
	return b
}

func invoiceObject(status string, paid bool) map[string]any {
	return map[string]any{"id": "in_1", "object": "invoice", "customer": "cus_acme", "status": status, "paid": paid,
		"metadata": map[string]string{"billcycle_invoice_id": "inv_1"}, "charge": "ch_1", "payment_intent": "pi_1",
		"amount_remaining": 4200, "currency": "usd", "attempt_count": 1, "hosted_invoice_url": "https://pay.test/in_1"}
}

// deliver posts payload signed with secret at ts, as Stripe would.
func (w *webhookTest) deliver(payload []byte, secret string, ts time.Time) (int, map[string]any) {
	w.t.Helper()
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: ts})
	return w.post(payload, signed.Header)
}

func (w *webhookTest) post(payload []byte, header string) (int, map[string]any) {
	w.t.Helper()
	req, _ := http.NewRequest("POST", w.srv.URL+"/v1/webhooks/stripe", strings.NewReader(string(payload)))
	req.Header.Set("Content-Type", "application/json")
	if header != "" {
		req.Header.Set("Stripe-Signature", header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		w.t.Fatalf("webhook answer %q is not JSON", raw)
	}
	return resp.StatusCode, out
}

func (w *webhookTest) ok(payload []byte) map[string]any {
	w.t.Helper()
	status, out := w.deliver(payload, testWebhookSecret, time.Now())
	if status != http.StatusOK {
		w.t.Fatalf("webhook status = %d (%v), want 200", status, out)
	}
	return out
}

func TestStripeWebhookStartsAndStopsDunning(t *testing.T) {
	w := newWebhookTest(t, testWebhookSecret)
	failed := event("evt_fail", "invoice.payment_failed", 0, invoiceObject("open", false))
	if out := w.ok(failed); out["duplicate"] != false || out["outcome"] != "dunning dunning/inv_1" {
		t.Errorf("payment_failed answer = %v, want dunning started", out)
	}
	starts, _ := w.tc.record()
	if !slices.Equal(starts, []string{"dunning/inv_1 payment-failed"}) {
		t.Fatalf("starts = %v, want signal-with-start of dunning/inv_1", starts)
	}
	o := w.tc.opts[0]
	if o.WorkflowIDConflictPolicy != enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING ||
		o.WorkflowIDReusePolicy != enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE || o.TaskQueue != "billing" {
		t.Errorf("start options = %+v, want USE_EXISTING, REJECT_DUPLICATE on billing", o)
	}
	if v, _ := o.TypedSearchAttributes.GetKeyword(workflows.SearchCustomerID); v != "acme" {
		t.Errorf("CustomerId search attribute = %q, want acme", v)
	}
	in := w.tc.running["dunning/inv_1"]
	want := workflows.DunningInput{InvoiceID: "inv_1", StripeInvoiceID: "in_1", CustomerID: "acme", PlanID: "pro",
		StartedAt: whT0, Reason: workflows.DunningReasonPaymentFailed, AmountDue: 4200, Currency: "usd", HostedURL: "https://pay.test/in_1"}
	if in.Policy != nil || fmt.Sprint(in) != fmt.Sprint(want) {
		t.Errorf("dunning input = %+v\nwant %+v", in, want)
	}

	// Stripe redelivers the same event: acknowledged, nothing started again.
	if out := w.ok(failed); out["duplicate"] != true {
		t.Errorf("redelivery answer = %v, want duplicate", out)
	}
	// A second failed attempt (a new event) only signals the running sequence.
	w.ok(event("evt_fail2", "invoice.payment_failed", 60, invoiceObject("open", false)))
	w.ok(event("evt_paid", "invoice.paid", 120, invoiceObject("paid", true)))
	w.ok(event("evt_paid", "invoice.paid", 120, invoiceObject("paid", true)))
	starts, signals := w.tc.record()
	if len(starts) != 2 || !slices.Equal(signals, []string{"dunning/inv_1 paid"}) {
		t.Errorf("after a second failure and the payment (delivered twice): starts %v, signals %v; want 2 starts (one run) and one paid signal", starts, signals)
	}
	if st, _ := w.st.InvoiceStatus(context.Background(), "inv_1", ""); st != "paid" {
		t.Errorf("recorded invoice status = %q, want paid", st)
	}
	if n, _ := w.st.CountStripeEvents(context.Background()); n != 3 {
		t.Errorf("stored events = %d, want 3 distinct", n)
	}
}

func TestStripeWebhookOutOfOrder(t *testing.T) {
	tests := []struct {
		name  string
		first []byte
	}{
		{"paid before the failure", event("evt_paid", "invoice.paid", 120, invoiceObject("paid", true))},
		{"payment_succeeded before the failure", event("evt_ps", "invoice.payment_succeeded", 120, invoiceObject("paid", true))},
		{"voided before the failure", event("evt_void", "invoice.voided", 120, invoiceObject("void", false))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWebhookTest(t, testWebhookSecret)
			if out := w.ok(tt.first); !strings.Contains(fmt.Sprint(out["outcome"]), "not running") {
				t.Errorf("first answer = %v, want recorded with no dunning running", out)
			}
			out := w.ok(event("evt_fail", "invoice.payment_failed", 0, invoiceObject("open", false)))
			if !strings.HasPrefix(fmt.Sprint(out["outcome"]), "ignored: invoice already") {
				t.Errorf("late payment_failed answer = %v, want ignored", out)
			}
			if starts, signals := w.tc.record(); len(starts) != 0 || len(signals) != 0 {
				t.Errorf("starts %v, signals %v; want no dunning for a settled invoice", starts, signals)
			}
		})
	}
}

func TestStripeWebhookRefusesBadSignatures(t *testing.T) {
	good := event("evt_fail", "invoice.payment_failed", 0, invoiceObject("open", false))
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: good, Secret: testWebhookSecret})
	tampered := []byte(strings.Replace(string(good), `"amount_remaining":4200`, `"amount_remaining":1`, 1))
	tests := []struct {
		name    string
		payload []byte
		header  string
	}{
		{"tampered body", tampered, signed.Header},
		{"wrong secret", good, webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: good, Secret: "whsec_other"}).Header},
		{"stale timestamp", good, webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: good, Secret: testWebhookSecret,
			Timestamp: time.Now().Add(-10 * time.Minute)}).Header},
		{"no signature", good, ""},
		{"garbage signature", good, "t=1,v1=abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWebhookTest(t, testWebhookSecret)
			status, out := w.post(tt.payload, tt.header)
			if code, field := errorOf(out); status != http.StatusBadRequest || code != "invalid_signature" || field != "Stripe-Signature" {
				t.Errorf("status %d, error %s/%s; want 400 invalid_signature on Stripe-Signature", status, code, field)
			}
			starts, signals := w.tc.record()
			n, _ := w.st.CountStripeEvents(context.Background())
			if st, _ := w.st.InvoiceStatus(context.Background(), "inv_1", "in_1"); n != 0 || st != "" || len(starts)+len(signals) != 0 {
				t.Errorf("after a refused event: %d events, invoice status %q, starts %v, signals %v; want nothing changed", n, st, starts, signals)
			}
		})
	}
	// The same payload, correctly signed, is accepted: the refusals were about the signature.
	w := newWebhookTest(t, testWebhookSecret)
	w.ok(good)
}

func TestStripeWebhookWithoutSecret(t *testing.T) {
	w := newWebhookTest(t, "")
	status, out := w.deliver(event("evt_1", "invoice.paid", 0, invoiceObject("paid", true)), testWebhookSecret, time.Now())
	if code, _ := errorOf(out); status != http.StatusServiceUnavailable || code != "webhooks_disabled" {
		t.Errorf("status %d %v, want 503 webhooks_disabled", status, out)
	}
}

func TestStripeWebhookDisputePausesDunning(t *testing.T) {
	w := newWebhookTest(t, testWebhookSecret)
	w.ok(event("evt_fail", "invoice.payment_failed", 0, invoiceObject("open", false)))
	dispute := func(status string) map[string]any {
		return map[string]any{"id": "dp_1", "object": "dispute", "charge": "ch_1", "payment_intent": "pi_1", "status": status}
	}
	w.ok(event("evt_dp1", "charge.dispute.created", 60, dispute("needs_response")))
	w.ok(event("evt_dp2", "charge.dispute.closed", 120, dispute("won")))
	w.ok(event("evt_dp3", "charge.dispute.created", 180, map[string]any{"id": "dp_2", "object": "dispute", "charge": "ch_unknown"}))
	_, signals := w.tc.record()
	if !slices.Equal(signals, []string{"dunning/inv_1 dispute-opened", "dunning/inv_1 dispute-closed"}) {
		t.Errorf("signals = %v, want dispute-opened then dispute-closed to dunning/inv_1", signals)
	}
	if d, ok := w.tc.args[0].(workflows.Dispute); !ok || d.DisputeID != "dp_1" || !d.At.Equal(whT0.Add(time.Minute)) {
		t.Errorf("dispute signal payload = %+v, want dp_1 at the event's creation", w.tc.args[0])
	}
}

func TestStripeWebhookSubscriptions(t *testing.T) {
	w := newWebhookTest(t, testWebhookSecret)
	sub := func(status string) map[string]any {
		return map[string]any{"id": "sub_1", "object": "subscription", "customer": "cus_zeta", "status": status,
			"metadata": map[string]string{"billcycle_customer_id": "zeta", "billcycle_plan": "pro"}}
	}
	w.ok(event("evt_s1", "customer.subscription.created", 0, sub("active")))
	c, err := w.st.Customer(context.Background(), "zeta")
	if err != nil || c.StripeCustomerID != "cus_zeta" || c.Plan != "pro" {
		t.Fatalf("customer zeta = %+v, %v; want created with cus_zeta on pro", c, err)
	}
	if len(w.tc.fakeTemporal.starts) != 1 || w.tc.fakeTemporal.starts[0].ID != "customer/zeta" ||
		w.tc.fakeTemporal.starts[0].WorkflowIDConflictPolicy != enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING {
		t.Fatalf("workflow starts = %+v, want customer/zeta with USE_EXISTING", w.tc.fakeTemporal.starts)
	}
	if in := w.tc.fakeTemporal.args[0].(workflows.SignupInput); in.CustomerID != "zeta" || in.Plan != "pro" {
		t.Errorf("signup input = %+v, want zeta on pro", in)
	}
	w.ok(event("evt_s2", "customer.subscription.updated", 60, sub("past_due")))
	w.ok(event("evt_s3", "customer.subscription.deleted", 120, sub("canceled")))
	// An existing customer is found by its Stripe id.
	w.ok(event("evt_s4", "customer.subscription.created", 180, map[string]any{"id": "sub_2", "object": "subscription", "customer": "cus_acme"}))
	if _, signals := w.tc.record(); !slices.Equal(signals, []string{"customer/zeta cancel"}) {
		t.Errorf("signals = %v, want one cancel to customer/zeta", signals)
	}
	if got := w.tc.fakeTemporal.starts[1].ID; got != "customer/acme" {
		t.Errorf("second subscription started %s, want customer/acme", got)
	}
}

func TestDunningPolicyAPI(t *testing.T) {
	w := newWebhookTest(t, testWebhookSecret)
	status, out := w.do("GET", "/v1/plans/pro/dunning-policy", "", "")
	if status != 200 || out["default"] != true {
		t.Errorf("GET policy of a plan without one = %d %v, want the default", status, out)
	}
	w.ok(event("evt_fail", "invoice.payment_failed", 0, invoiceObject("open", false))) // a running sequence of plan pro
	body := `{"steps":[{"after":"0s","action":"email_notice","template":"r"},{"after":"48h","action":"suspend_access"}]}`
	status, out = w.do("PUT", "/v1/plans/pro/dunning-policy", "application/json", body)
	if status != 200 || out["signalled"] != float64(1) {
		t.Fatalf("PUT policy = %d %v, want 200 with one running sequence signalled", status, out)
	}
	if _, signals := w.tc.record(); !slices.Equal(signals, []string{"dunning/inv_1 policy-changed"}) {
		t.Errorf("signals = %v, want policy-changed to dunning/inv_1", signals)
	}
	if !strings.Contains(w.tc.lastQuery, "Plan = 'pro'") || !strings.Contains(w.tc.lastQuery, "WorkflowType = 'Dunning'") {
		t.Errorf("list query = %q, want running Dunning workflows of plan pro", w.tc.lastQuery)
	}
	p, ok, err := w.st.DunningPolicy(context.Background(), "pro")
	if err != nil || !ok || p.ID != "pro" || len(p.Steps) != 2 || p.Steps[1].After != billing.Duration(48*time.Hour) {
		t.Errorf("stored policy = %+v, %v, %v; want two steps with id pro", p, ok, err)
	}
	status, out = w.do("GET", "/v1/plans/pro/dunning-policy", "", "")
	if status != 200 || out["default"] != false {
		t.Errorf("GET policy after PUT = %d %v, want the stored one", status, out)
	}

	bad := []struct{ body, field string }{
		{`{"steps":[{"after":"72h","action":"email_notice","template":"r"},{"after":"24h","action":"suspend_access"}]}`, "steps[1].after"},
		{`{"steps":[{"after":"0s","action":"fax"}]}`, "steps[0].action"},
		{`{"steps":[]}`, "steps"},
		{`{"steps":[{"after":"soon","action":"email_notice"}]}`, ""},
		{`{"stepz":[]}`, "stepz"},
	}
	for _, b := range bad {
		status, out := w.do("PUT", "/v1/plans/pro/dunning-policy", "application/json", b.body)
		if code, field := errorOf(out); status != 400 || code != "invalid_request" || field != b.field {
			t.Errorf("PUT %s = %d %s/%q, want 400 naming %q", b.body, status, code, field, b.field)
		}
	}
	if p2, _, _ := w.st.DunningPolicy(context.Background(), "pro"); p2.ID != "pro" || len(p2.Steps) != 2 {
		t.Errorf("after refused PUTs the stored policy = %+v, want unchanged", p2)
	}
}

func TestOverdueCohortAPI(t *testing.T) {
	w := newWebhookTest(t, testWebhookSecret)
	ctx := context.Background()
	for i, daysAgo := range []int{45, 35, 3} {
		due := time.Now().Add(-time.Duration(daysAgo) * 24 * time.Hour)
		_, err := w.st.Pool().Exec(ctx, `INSERT INTO invoices (id, customer_id, kind, period_start, period_end, currency,
			subtotal, discount, tax, credit_applied, total, status, due_at)
			VALUES ($1, 'acme', 'cycle', $2, $2, 'usd', 1000, 0, 0, 0, 1000, 'open', $2)`, fmt.Sprintf("inv_%d", i), due)
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		query string
		want  int // customers listed
		count float64
	}{
		{"", 1, 2}, // defaults: more than one outstanding invoice due over 30 days ago
		{"?min_outstanding=2&older_than=30d", 1, 2},
		{"?min_outstanding=3&older_than=720h", 0, 0},
		{"?min_outstanding=3&older_than=1d", 1, 3},
		{"?min_outstanding=1&older_than=40d", 1, 1},
	}
	for _, tt := range tests {
		status, out := w.do("GET", "/v1/cohorts/overdue"+tt.query, "", "")
		rows, _ := out["customers"].([]any)
		if status != 200 || len(rows) != tt.want {
			t.Errorf("GET cohort%s = %d %v, want %d customers", tt.query, status, out, tt.want)
			continue
		}
		if tt.want == 1 {
			if r := rows[0].(map[string]any); r["customer_id"] != "acme" || r["outstanding"] != tt.count {
				t.Errorf("GET cohort%s row = %v, want acme with %v invoices", tt.query, r, tt.count)
			}
		}
	}
	for _, q := range []string{"?min_outstanding=0", "?min_outstanding=x", "?older_than=soon", "?older_than=-5d", "?limit=0"} {
		status, out := w.do("GET", "/v1/cohorts/overdue"+q, "", "")
		want := strings.SplitN(strings.TrimPrefix(q, "?"), "=", 2)[0]
		if _, field := errorOf(out); status != 400 || field != want {
			t.Errorf("GET cohort%s = %d %v, want 400 naming %s", q, status, out, want)
		}
	}
}
