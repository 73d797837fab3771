package starter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"go.temporal.io/sdk/client"

	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/billing/meter"
	"github.com/billcycle/billcycle/config"
	"github.com/billcycle/billcycle/internal/testenv"
	"github.com/billcycle/billcycle/store"
)

// newCatalogTest is newAPITest that also hands back the store, for setting
// up usage and invoices the API only reads.
func newCatalogTest(t *testing.T) (*apiTest, *store.Store) {
	t.Helper()
	return newCatalogTestWith(t, &fakeTemporal{}, nil)
}

// subUpdatingTemporal is a fakeTemporal that also takes workflow updates,
// answering each with the error in reject (by update name), if any.
type subUpdatingTemporal struct {
	*fakeTemporal
	updates []string
	reject  map[string]error
}

type subUpdateDone struct{ err error }

func (subUpdateDone) WorkflowID() string               { return "" }
func (subUpdateDone) RunID() string                    { return "" }
func (subUpdateDone) UpdateID() string                 { return "" }
func (u subUpdateDone) Get(context.Context, any) error { return u.err }

func (u *subUpdatingTemporal) UpdateWorkflow(_ context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.updates = append(u.updates, o.WorkflowID+" "+o.UpdateName)
	return subUpdateDone{u.reject[o.UpdateName]}, nil
}

func newCatalogTestWith(t *testing.T, fake *fakeTemporal, tc Temporal) (*apiTest, *store.Store) {
	t.Helper()
	if tc == nil {
		tc = fake
	}
	st := testenv.Store(t)
	cfg, err := config.Load(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxBodyBytes = 8192
	srv := httptest.NewServer(New(st, tc, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler())
	t.Cleanup(srv.Close)
	key, _, err := st.CreateAPIKey(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return &apiTest{t: t, srv: srv, key: key, tc: fake}, st
}

const productJSON = `{"id":"api","name":"API","flat_fee":1000,"prices":[
	{"meter":"requests","model":"per_unit","unit_price":"0.04","free_units":"1000"},
	{"meter":"storage","model":"graduated","tiers":[{"up_to":"10","unit_price":"100"},{"up_to":null,"unit_price":"50"}]}]}`

func mustStatus(t *testing.T, what string, status int, out map[string]any, want int) {
	t.Helper()
	if status != want {
		t.Fatalf("%s = %d %v, want %d", what, status, out, want)
	}
}

func TestProductsAndPlans(t *testing.T) {
	a, _ := newCatalogTest(t)
	status, out := a.do("POST", "/v1/products", "application/json", productJSON)
	mustStatus(t, "POST /v1/products", status, out, 201)
	status, out = a.do("POST", "/v1/products", "application/json", productJSON)
	mustStatus(t, "repeat POST /v1/products", status, out, 200)
	status, out = a.do("POST", "/v1/products", "application/json", strings.Replace(productJSON, `"flat_fee":1000`, `"flat_fee":5`, 1))
	if code, _ := errorOf(out); status != 409 || code != "conflict" {
		t.Errorf("POST changed product = %d %v, want 409 conflict", status, out)
	}
	status, out = a.do("GET", "/v1/products/api", "", "")
	if status != 200 || out["name"] != "API" {
		t.Errorf("GET /v1/products/api = %d %v", status, out)
	}

	// A plan may reference catalog products by id or define them inline.
	plan := `{"id":"pro","name":"Pro","currency":"USD","interval":{"unit":"month","count":1},
		"products":["api",{"id":"support","name":"Support","flat_fee":5000}]}`
	status, out = a.do("POST", "/v1/plans", "application/json", plan)
	mustStatus(t, "POST /v1/plans", status, out, 201)
	if out["currency"] != "usd" || len(out["products"].([]any)) != 2 {
		t.Errorf("created plan = %v, want usd with 2 products", out)
	}
	status, out = a.do("GET", "/v1/plans", "", "")
	if status != 200 || len(out["plans"].([]any)) != 1 {
		t.Errorf("GET /v1/plans = %d %v, want one plan", status, out)
	}
	if status, out = a.do("GET", "/v1/plans/nope", "", ""); status != 404 {
		t.Errorf("GET /v1/plans/nope = %d %v, want 404", status, out)
	}
}

func TestPlanErrorsNameTheField(t *testing.T) {
	a, _ := newCatalogTest(t)
	tests := []struct {
		name, path, body, field string
	}{
		{"unbounded middle tier", "/v1/plans", `{"id":"p","name":"P","currency":"usd","products":[{"id":"x","name":"X","prices":[
			{"meter":"m","model":"graduated","tiers":[{"up_to":null,"unit_price":"1"},{"up_to":null,"unit_price":"1"}]}]}]}`,
			"products[0].prices[0].tiers[0].up_to"},
		{"unknown product", "/v1/plans", `{"id":"p","name":"P","currency":"usd","products":[{"id":"x","name":"X","flat_fee":1},"ghost"]}`, "products[1]"},
		{"unknown field inline", "/v1/plans", `{"id":"p","name":"P","currency":"usd","products":[{"id":"x","name":"X","flat_fee":1,"colour":"red"}]}`, "products[0].colour"},
		{"bad currency", "/v1/plans", `{"id":"p","name":"P","currency":"xyz","products":[{"id":"x","name":"X","flat_fee":1}]}`, "currency"},
		{"bad interval", "/v1/plans", `{"id":"p","name":"P","currency":"usd","interval":{"unit":"week","count":1},"products":[{"id":"x","name":"X","flat_fee":1}]}`, "interval.unit"},
		{"bad id", "/v1/plans", `{"id":"a plan","name":"P","currency":"usd","products":[]}`, "id"},
		{"package without size", "/v1/products", `{"id":"x","name":"X","prices":[{"meter":"m","model":"package","unit_price":"5"}]}`, "prices[0].package_size"},
		{"inline estimate plan", "/v1/estimate", `{"plan":{"id":"p","name":"P","currency":"usd","products":[{"id":"x","name":"X","prices":[{"meter":"m","model":"flat"}]}]},"quantities":{}}`,
			"plan.products[0].prices[0].model"},
		{"estimate without plan", "/v1/estimate", `{"quantities":{}}`, "plan"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := a.do("POST", tt.path, "application/json", tt.body)
			if code, field := errorOf(out); status != 400 || code != "invalid_request" || field != tt.field {
				t.Errorf("POST %s = %d %s field %q, want 400 field %q (%v)", tt.path, status, code, field, tt.field, out)
			}
		})
	}
}

func TestEstimate(t *testing.T) {
	a, st := newCatalogTest(t)
	a.do("POST", "/v1/products", "application/json", productJSON)
	a.do("POST", "/v1/plans", "application/json", `{"id":"pro","name":"Pro","currency":"usd","products":["api"]}`)
	plan, err := st.Plan(context.Background(), "pro")
	if err != nil {
		t.Fatal(err)
	}
	q := map[string]decimal.Decimal{"requests": decimal.RequireFromString("250000"), "storage": decimal.RequireFromString("12.5")}
	want := billing.Estimate(plan, q)
	status, out := a.do("POST", "/v1/estimate", "application/json", `{"plan":"pro","quantities":{"requests":250000,"storage":"12.5"}}`)
	mustStatus(t, "POST /v1/estimate", status, out, 200)
	est := out["estimate"].(map[string]any)
	if est["total"] != float64(want.Total) || len(est["lines"].([]any)) != len(want.Lines) {
		t.Errorf("estimate = %v, want total %d with %d lines", est, want.Total, len(want.Lines))
	}
	status, out = a.do("POST", "/v1/estimate", "application/json", `{"plan":"pro","quantities":{"bandwidth":1}}`)
	if _, field := errorOf(out); status != 400 || field != "quantities.bandwidth" {
		t.Errorf("estimate with an unpriced meter = %d %v, want 400 quantities.bandwidth", status, out)
	}
}

// subscribe creates plan pro (flat fees 1000) and customer acme.
func subscribeSetup(t *testing.T, a *apiTest) {
	t.Helper()
	a.do("POST", "/v1/products", "application/json", productJSON)
	status, out := a.do("POST", "/v1/plans", "application/json", `{"id":"pro","name":"Pro","currency":"usd","products":["api"]}`)
	mustStatus(t, "POST /v1/plans", status, out, 201)
	status, out = a.do("POST", "/v1/signups", "application/json", `{"customer_id":"acme","email":"billing@acme.test","name":"Acme"}`)
	mustStatus(t, "POST /v1/signups", status, out, 201)
}

func TestSubscription(t *testing.T) {
	a, _ := newCatalogTest(t)
	subscribeSetup(t, a)
	body := `{"plan_id":"pro","anchor":"2026-01-31T00:00:00Z","tax_rate":"8.25","credit_balance":500,
		"discounts":[{"kind":"percent","percent_off":"10"}],"collection_method":"send_invoice","days_until_due":14,
		"thresholds":{"amount_gte":50000,"usage_gte":{"requests":"1000000"}}}`
	status, out := a.do("PUT", "/v1/customers/acme/subscription", "application/json", body)
	mustStatus(t, "PUT subscription", status, out, 201)
	sub := out["subscription"].(map[string]any)
	anchor := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	want := billing.PeriodAt(anchor, billing.Interval{Unit: billing.Month, Count: 1}, time.Now())
	per := sub["current_period"].(map[string]any)
	if per["start"] != want.Start.Format(time.RFC3339) || per["end"] != want.End.Format(time.RFC3339) {
		t.Errorf("current_period = %v, want %v (31st anchor clamped in short months)", per, want)
	}
	if sub["status"] != "active" || sub["collection_method"] != "send_invoice" || sub["tax_rate"] != "8.25" {
		t.Errorf("subscription = %v", sub)
	}
	if n := out["workflow"].(map[string]any); n["notified"] != true {
		t.Errorf("workflow notice = %v, want notified", n)
	}
	if got := a.tc.signals; len(got) != 1 || got[0] != "customer/acme subscription-changed" {
		t.Errorf("signals = %v, want customer/acme subscription-changed", got)
	}

	status, out = a.do("PUT", "/v1/customers/acme/subscription", "application/json", `{"plan_id":"pro"}`)
	mustStatus(t, "second PUT subscription", status, out, 200)
	if sub := out["subscription"].(map[string]any); sub["anchor"] != "2026-01-31T00:00:00Z" {
		t.Errorf("a change without anchor moved it to %v", sub["anchor"])
	}
	status, out = a.do("GET", "/v1/customers/acme", "", "")
	if status != 200 || out["subscription"] == nil || out["customer"].(map[string]any)["email"] != "billing@acme.test" {
		t.Errorf("GET /v1/customers/acme = %d %v, want customer and subscription", status, out)
	}

	tests := []struct {
		name, body, field string
	}{
		{"threshold within fixed fees", `{"plan_id":"pro","thresholds":{"amount_gte":1000}}`, "thresholds.amount_gte"},
		{"threshold on unpriced meter", `{"plan_id":"pro","thresholds":{"usage_gte":{"bandwidth":"5"}}}`, "thresholds.usage_gte.bandwidth"},
		{"percent over 100", `{"plan_id":"pro","discounts":[{"kind":"percent","percent_off":"150"}]}`, "discounts[0].percent_off"},
		{"send_invoice without term", `{"plan_id":"pro","collection_method":"send_invoice"}`, "days_until_due"},
		{"unknown method", `{"plan_id":"pro","collection_method":"cash"}`, "collection_method"},
		{"unknown plan", `{"plan_id":"ghost"}`, "plan_id"},
		{"negative credit", `{"plan_id":"pro","credit_balance":-1}`, "credit_balance"},
		{"bad status", `{"plan_id":"pro","status":"paused"}`, "status"},
		{"bad anchor", `{"plan_id":"pro","anchor":"tomorrow"}`, "anchor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := a.do("PUT", "/v1/customers/acme/subscription", "application/json", tt.body)
			if _, field := errorOf(out); status != 400 || field != tt.field {
				t.Errorf("PUT %s = %d %v, want 400 field %q", tt.body, status, out, tt.field)
			}
		})
	}
	if status, out := a.do("PUT", "/v1/customers/ghost/subscription", "application/json", `{"plan_id":"pro"}`); status != 404 {
		t.Errorf("PUT for an unknown customer = %d %v, want 404", status, out)
	}
}

func TestInvoicePreviewAndInvoices(t *testing.T) {
	a, st := newCatalogTest(t)
	ctx := context.Background()
	subscribeSetup(t, a)
	if _, _, err := st.CreateMeter(ctx, meter.Meter{Slug: "requests", Name: "Requests", EventName: "api.request", Aggregation: meter.AggregationCount}, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	anchor := now.Add(-10 * 24 * time.Hour).Truncate(time.Second)
	status, out := a.do("PUT", "/v1/customers/acme/subscription", "application/json", fmt.Sprintf(`{"plan_id":"pro","anchor":%q}`, anchor.Format(time.RFC3339)))
	mustStatus(t, "PUT subscription", status, out, 201)
	var events []meter.Event
	for i := range 3000 {
		events = append(events, meter.Event{ID: fmt.Sprintf("e%d", i), CustomerID: "acme", Name: "api.request", Timestamp: now.Add(-time.Hour)})
	}
	if _, err := st.IngestEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	plan, _ := st.Plan(ctx, "pro")
	sub, _, _ := st.Subscription(ctx, "acme")
	period := billing.PeriodAt(anchor, plan.Interval, now)
	soFar := billing.Rate(plan, sub, period, map[string]decimal.Decimal{"requests": decimal.NewFromInt(3000)})

	// A threshold invoice already billed the first 2000 requests of the period.
	early := billing.Rate(plan, sub, period, map[string]decimal.Decimal{"requests": decimal.NewFromInt(2000)})
	id := "customer/acme/" + period.Start.Format(time.DateOnly) + "/threshold-1"
	if _, _, err := st.RecordInvoice(ctx, store.NewInvoice{ID: id, CustomerID: "acme", Kind: store.KindThreshold, Invoice: early, DueAt: now}); err != nil {
		t.Fatal(err)
	}

	status, out = a.do("GET", "/v1/customers/acme/invoice-preview", "", "")
	mustStatus(t, "GET invoice-preview", status, out, 200)
	total := func(v any) float64 { return v.(map[string]any)["total"].(float64) }
	if got := total(out["so_far"]); got != float64(soFar.Total) {
		t.Errorf("so_far total = %v, want %d", got, soFar.Total)
	}
	if got := total(out["already_invoiced"]); got != float64(early.Total) {
		t.Errorf("already_invoiced total = %v, want %d", got, early.Total)
	}
	if got := total(out["due_now"]); got != float64(soFar.Total-early.Total) {
		t.Errorf("due_now total = %v, want %d - %d", got, soFar.Total, early.Total)
	}
	proj := out["projection"].(map[string]any)
	q, _ := decimal.NewFromString(proj["quantities"].(map[string]any)["requests"].(string))
	// 3000 requests in 10 days of a month-long period: about 3000 × days(period) / 10.
	days := period.End.Sub(period.Start).Hours() / 24
	if f, _ := q.Float64(); f < 3000*days/10*0.99 || f > 3000*days/10*1.01 || !strings.HasPrefix(proj["method"].(string), "linear") {
		t.Errorf("projected requests = %v (%v), want about %.0f, linear", q, proj["method"], 3000*days/10)
	}

	// The invoices themselves.
	status, out = a.do("GET", "/v1/invoices?customer_id=acme", "", "")
	if status != 200 || len(out["invoices"].([]any)) != 1 {
		t.Errorf("GET /v1/invoices = %d %v, want one invoice", status, out)
	}
	status, out = a.do("GET", "/v1/invoices/"+id, "", "")
	if status != 200 || out["id"] != id || len(out["lines"].([]any)) != len(early.Lines) {
		t.Errorf("GET /v1/invoices/%s = %d %v", id, status, out)
	}
	lines := out["lines"].([]any)
	if q := lines[1].(map[string]any)["query"].(map[string]any); q["customer_id"] != "acme" || q["aggregation"] != "count" {
		t.Errorf("requests line query = %v, want acme/count", q)
	}
	for _, tt := range []struct{ suffix, ctype, prefix string }{{".csv", "text/csv; charset=utf-8", "invoice_id,"}, {".pdf", "application/pdf", "%PDF-"}} {
		req, _ := http.NewRequest("GET", a.srv.URL+"/v1/invoices/"+id+tt.suffix, nil)
		req.Header.Set("Authorization", "Bearer "+a.key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tt.ctype || !strings.HasPrefix(string(body), tt.prefix) {
			t.Errorf("GET %s = %d %s %q…, want 200 %s starting %q", tt.suffix, resp.StatusCode, resp.Header.Get("Content-Type"), body[:min(20, len(body))], tt.ctype, tt.prefix)
		}
	}
	if status, out := a.do("GET", "/v1/invoices/customer/acme/nope.pdf", "", ""); status != 404 {
		t.Errorf("GET unknown invoice pdf = %d %v, want 404", status, out)
	}
	if status, out := a.do("GET", "/v1/invoices", "", ""); status != 400 {
		t.Errorf("GET /v1/invoices without customer = %d %v, want 400", status, out)
	}
}

func TestSubscriptionChangesReachTheWorkflow(t *testing.T) {
	fake := &fakeTemporal{}
	tc := &subUpdatingTemporal{fakeTemporal: fake, reject: map[string]error{}}
	a, _ := newCatalogTestWith(t, fake, tc)
	subscribeSetup(t, a)
	a.do("POST", "/v1/plans", "application/json", `{"id":"pro2","name":"Pro 2","currency":"usd","products":["api"]}`)
	a.do("POST", "/v1/plans", "application/json", `{"id":"pro3","name":"Pro 3","currency":"usd","products":["api"]}`)
	steps := []struct {
		name, body string
		reject     string
		updates    []string
		signals    int
	}{
		{"new subscription", `{"plan_id":"pro","thresholds":{"amount_gte":5000}}`, "", nil, 1},
		{"thresholds", `{"plan_id":"pro","thresholds":{"amount_gte":9000}}`, "", []string{"set-thresholds"}, 2},
		{"other terms", `{"plan_id":"pro","thresholds":{"amount_gte":9000},"tax_rate":"5"}`, "", nil, 3},
		{"plan", `{"plan_id":"pro2","thresholds":{"amount_gte":9000}}`, "", []string{"change-plan"}, 4},
		{"refused plan change", `{"plan_id":"pro3"}`, "change-plan", []string{"change-plan"}, 4},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			nUpdates := len(tc.updates)
			if st.reject != "" {
				tc.reject[st.reject] = errors.New("refused")
			}
			status, out := a.do("PUT", "/v1/customers/acme/subscription", "application/json", st.body)
			if status != 200 && status != 201 {
				t.Fatalf("PUT %s = %d %v", st.body, status, out)
			}
			var got []string
			for _, u := range tc.updates[nUpdates:] {
				got = append(got, strings.TrimPrefix(u, "customer/acme "))
			}
			if fmt.Sprint(got) != fmt.Sprint(st.updates) || len(fake.signals) != st.signals {
				t.Errorf("PUT %s sent updates %v and %d signals in all, want %v and %d", st.body, got, len(fake.signals), st.updates, st.signals)
			}
			n := out["workflow"].(map[string]any)
			if refused := st.reject != ""; refused != (n["error"] != nil) {
				t.Errorf("workflow notice = %v, want an error: %v", n, refused)
			}
		})
	}
}
