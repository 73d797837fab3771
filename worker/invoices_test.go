package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"go.temporal.io/sdk/testsuite"

	"github.com/billcycle/billcycle/activities"
	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/integrations/stripe"
	"github.com/billcycle/billcycle/integrations/stripe/stripefake"
	"github.com/billcycle/billcycle/integrations/stripe/stripemock"
	"github.com/billcycle/billcycle/internal/testenv"
	"github.com/billcycle/billcycle/store"
	"github.com/billcycle/billcycle/worker"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// setupCustomer stores a plan, customer acme with Stripe id stripeID and a
// send_invoice subscription with a discount and tax, and returns a rated
// invoice for a March period.
func setupCustomer(t *testing.T, st *store.Store, stripeID string) billing.Invoice {
	t.Helper()
	ctx := context.Background()
	up := d("10")
	plan := billing.Plan{ID: "pro", Name: "Pro", Currency: "usd", Interval: billing.Interval{Unit: billing.Month, Count: 1},
		Products: []billing.Product{{ID: "api", Name: "API", FlatFee: 2000, Prices: []billing.MeterPrice{
			{Meter: "requests", Model: billing.PerUnit, UnitPrice: d("0.04"), FreeUnits: d("1000")},
			{Meter: "storage", Model: billing.Graduated, Tiers: []billing.Tier{{UpTo: &up, UnitPrice: d("100")}, {UnitPrice: d("50")}}},
		}}}}
	if _, _, err := st.CreatePlan(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateCustomer(ctx, store.Customer{ID: "acme", Email: "billing@acme.test", Name: "Acme"}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetStripeCustomerID(ctx, "acme", stripeID); err != nil {
		t.Fatal(err)
	}
	sub := billing.Subscription{CustomerID: "acme", PlanID: "pro", Anchor: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Status: billing.Active, Currency: "usd", TaxRate: d("8.25"),
		Discounts: []billing.Discount{{Kind: billing.PercentOff, PercentOff: d("10")}}}
	if _, _, err := st.PutSubscription(ctx, store.SubscriptionRecord{Subscription: sub, CollectionMethod: store.SendInvoice, DaysUntilDue: 14}); err != nil {
		t.Fatal(err)
	}
	period := billing.PeriodAt(sub.Anchor, plan.Interval, time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC))
	return billing.Rate(plan, sub, period, map[string]decimal.Decimal{"requests": d("123457"), "storage": d("12.5")})
}

func TestIssueInvoiceTwiceYieldsOneInvoice(t *testing.T) {
	st := testenv.Store(t)
	fake := stripefake.New(t)
	sc := stripe.New("sk_test_fake", fake.URL, nil)
	cus, err := sc.EnsureCustomer(context.Background(), stripe.CustomerInput{CustomerID: "acme", Email: "billing@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	rated := setupCustomer(t, st, cus)
	in := activities.IssueInvoiceInput{InvoiceID: "customer/acme/2026-03-01/cycle", CustomerID: "acme", Kind: "cycle", Invoice: rated}

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(worker.InvoiceActivities(worker.Deps{Store: st, Stripe: sc}))
	var a *activities.InvoiceActivities

	// The first attempt dies at finalize, after the invoice and its items exist in Stripe.
	fake.FailNext("/v1/invoices/*/finalize", 500)
	if _, err := env.ExecuteActivity(a.IssueInvoice, in); err == nil {
		t.Fatal("IssueInvoice with finalize failing succeeded, want an error")
	}
	var first, second activities.IssuedInvoice
	for i, out := range []*activities.IssuedInvoice{&first, &second} {
		v, err := env.ExecuteActivity(a.IssueInvoice, in)
		if err != nil {
			t.Fatalf("IssueInvoice attempt %d: %v", i+2, err)
		}
		if err := v.Get(out); err != nil {
			t.Fatal(err)
		}
	}
	if first != second || first.StripeInvoiceID == "" || first.Status != "open" || first.Total != rated.Total {
		t.Errorf("IssueInvoice results %+v and %+v, want the same open invoice with total %d", first, second, rated.Total)
	}
	wantDue := first.DueAt.Sub(time.Now().UTC())
	if wantDue < 13*24*time.Hour || wantDue > 14*24*time.Hour {
		t.Errorf("DueAt = %v, want 14 days from now (send_invoice)", first.DueAt)
	}

	invs := fake.Invoices()
	if len(invs) != 1 {
		t.Fatalf("stripe holds %d invoices, want 1", len(invs))
	}
	// Every rated line plus discount and tax lines; the total matches ours.
	wantItems := len(rated.Lines) + 2
	if got := invs[0].Items; len(got) != wantItems || invs[0].Total() != rated.Total {
		t.Errorf("stripe invoice has %d items totalling %d, want %d items totalling %d", len(got), invs[0].Total(), wantItems, rated.Total)
	}
	if invs[0].CollectionMethod != "send_invoice" || invs[0].DaysUntilDue != 14 {
		t.Errorf("stripe invoice collection = %s/%d, want send_invoice/14", invs[0].CollectionMethod, invs[0].DaysUntilDue)
	}

	rows, err := st.Invoices(context.Background(), "acme")
	if err != nil || len(rows) != 1 {
		t.Fatalf("ledger holds %d invoices (%v), want 1", len(rows), err)
	}
	got, err := st.Invoice(context.Background(), in.InvoiceID)
	if err != nil || got.StripeInvoiceID != invs[0].ID || got.Status != "open" || len(got.Lines) != len(rated.Lines) {
		t.Errorf("ledger invoice = %+v, %v; want stripe %s open with %d lines", got, err, invs[0].ID, len(rated.Lines))
	}
}

func TestIssueInvoiceAgainstStripeMock(t *testing.T) {
	st := testenv.Store(t)
	rated := setupCustomer(t, st, "cus_contract")
	sc := stripe.New("sk_test_123", stripemock.Start(t), nil)
	acts := worker.InvoiceActivities(worker.Deps{Store: st, Stripe: sc})
	out, err := acts.IssueInvoice(context.Background(), activities.IssueInvoiceInput{
		InvoiceID: "customer/acme/2026-03-01/threshold-1", CustomerID: "acme", Kind: "threshold", Invoice: rated})
	if err != nil {
		t.Fatalf("IssueInvoice against stripe-mock: %v", err)
	}
	if out.StripeInvoiceID == "" {
		t.Errorf("IssueInvoice = %+v, want a stripe invoice id", out)
	}
	got, err := st.Invoice(context.Background(), out.InvoiceID)
	if err != nil || got.StripeInvoiceID != out.StripeInvoiceID {
		t.Errorf("ledger invoice = %+v, %v; want stripe id %s", got, err, out.StripeInvoiceID)
	}
}
