package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/billing/meter"
	"github.com/billcycle/billcycle/internal/testenv"
	"github.com/billcycle/billcycle/store"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func ptr[T any](v T) *T { return &v }

// testPlan is a plan with a flat fee, a sub-cent per-unit price with a free
// allowance and a graduated price.
func testPlan(id string) billing.Plan {
	return billing.Plan{
		ID: id, Name: "Pro", Currency: "usd", Interval: billing.Interval{Unit: billing.Month, Count: 1},
		Products: []billing.Product{{
			ID: "api", Name: "API", FlatFee: 1000,
			Prices: []billing.MeterPrice{
				{Meter: "requests", Model: billing.PerUnit, UnitPrice: dec("0.04"), FreeUnits: dec("1000")},
				{Meter: "storage", Model: billing.Graduated, Tiers: []billing.Tier{
					{UpTo: ptr(dec("10")), UnitPrice: dec("100")},
					{UnitPrice: dec("50")},
				}},
			},
		}},
	}
}

func TestCatalogIsImmutableAndIdempotent(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	p := testPlan("pro")
	if _, created, err := s.CreateProduct(ctx, p.Products[0]); err != nil || !created {
		t.Fatalf("CreateProduct = %v, %v; want created", created, err)
	}
	if _, created, err := s.CreateProduct(ctx, p.Products[0]); err != nil || created {
		t.Errorf("repeat CreateProduct = %v, %v; want existing", created, err)
	}
	other := p.Products[0]
	other.FlatFee = 5
	if _, _, err := s.CreateProduct(ctx, other); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateProduct with another definition: error %v, want ErrConflict", err)
	}

	if _, created, err := s.CreatePlan(ctx, p); err != nil || !created {
		t.Fatalf("CreatePlan = %v, %v; want created", created, err)
	}
	got, err := s.Plan(ctx, "pro")
	if err != nil {
		t.Fatal(err)
	}
	if inv, want := billing.Estimate(got, map[string]decimal.Decimal{"requests": dec("3500"), "storage": dec("12")}),
		billing.Estimate(p, map[string]decimal.Decimal{"requests": dec("3500"), "storage": dec("12")}); inv.Total != want.Total {
		t.Errorf("stored plan rates %d, original %d", inv.Total, want.Total)
	}
	if _, created, err := s.CreatePlan(ctx, p); err != nil || created {
		t.Errorf("repeat CreatePlan = %v, %v; want existing", created, err)
	}
	p2 := testPlan("pro")
	p2.Products[0].Prices[0].UnitPrice = dec("0.05")
	if _, _, err := s.CreatePlan(ctx, p2); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreatePlan with another price: error %v, want ErrConflict", err)
	}
	bad := testPlan("bad")
	bad.Products[0].Prices[1].Tiers[0].UpTo = nil
	var fe *billing.FieldError
	if _, _, err := s.CreatePlan(ctx, bad); !errors.As(err, &fe) || fe.Field != "products[0].prices[1].tiers[0].up_to" {
		t.Errorf("CreatePlan(invalid) error = %v, want a FieldError on products[0].prices[1].tiers[0].up_to", err)
	}
	if _, err := s.Plan(ctx, "bad"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Plan(bad) error = %v, want ErrNotFound", err)
	}
	plans, err := s.Plans(ctx)
	if err != nil || len(plans) != 1 || plans[0].ID != "pro" {
		t.Errorf("Plans = %v, %v; want [pro]", plans, err)
	}
}

func TestSubscriptionRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	if _, _, err := s.CreateCustomer(ctx, store.Customer{ID: "acme", Email: "a@acme.test"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreatePlan(ctx, testPlan("pro")); err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	rec := store.SubscriptionRecord{
		Subscription: billing.Subscription{
			CustomerID: "acme", PlanID: "pro", Anchor: time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC),
			TrialEnd: &end, Status: billing.Trialing, Currency: "usd", CreditBalance: 500, TaxRate: dec("8.25"),
			Discounts: []billing.Discount{{Kind: billing.PercentOff, PercentOff: dec("10")}},
		},
		Thresholds:       billing.Thresholds{AmountGTE: 50000, UsageGTE: map[string]decimal.Decimal{"requests": dec("1e6")}},
		CollectionMethod: store.SendInvoice, DaysUntilDue: 14,
	}
	got, created, err := s.PutSubscription(ctx, rec)
	if err != nil || !created {
		t.Fatalf("PutSubscription = %v, %v; want created", created, err)
	}
	if !got.Anchor.Equal(rec.Anchor) || !got.TaxRate.Equal(dec("8.25")) || got.CreditBalance != 500 ||
		len(got.Discounts) != 1 || !got.Discounts[0].PercentOff.Equal(dec("10")) || got.DaysUntilDue != 14 ||
		got.Thresholds.AmountGTE != 50000 || !got.Thresholds.UsageGTE["requests"].Equal(dec("1000000")) ||
		got.TrialEnd == nil || !got.TrialEnd.Equal(end) {
		t.Errorf("stored subscription = %+v, want %+v", got, rec)
	}
	rec.Status, rec.TrialEnd = billing.Active, nil
	if got, created, err = s.PutSubscription(ctx, rec); err != nil || created || got.Status != billing.Active || got.TrialEnd != nil {
		t.Errorf("changed subscription = %+v, created %v, %v; want active without trial", got, created, err)
	}
	sub, th, err := s.Subscription(ctx, "acme")
	if err != nil || sub.PlanID != "pro" || th.AmountGTE != 50000 {
		t.Errorf("Subscription(acme) = %+v, %+v, %v", sub, th, err)
	}
	if _, _, err := s.Subscription(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Subscription(nobody) error = %v, want ErrNotFound", err)
	}
	rec.PlanID = "missing"
	if _, _, err := s.PutSubscription(ctx, rec); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PutSubscription(unknown plan) error = %v, want ErrNotFound", err)
	}
}

func TestRecordInvoiceIsIdempotent(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	if _, _, err := s.CreateCustomer(ctx, store.Customer{ID: "acme", Email: "a@acme.test"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateMeter(ctx, meter.Meter{Slug: "requests", Name: "Requests", EventName: "api.request", Aggregation: meter.AggregationCount}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	plan := testPlan("pro")
	period := billing.Period{Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)}
	rated := billing.Rate(plan, billing.Subscription{CustomerID: "acme", PlanID: "pro", Currency: "usd"}, period,
		map[string]decimal.Decimal{"requests": dec("3500"), "storage": dec("12")})
	usageTo := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	in := store.NewInvoice{ID: "customer/acme/2026-03-01/threshold-1", CustomerID: "acme", Kind: store.KindThreshold,
		Invoice: rated, UsageTo: usageTo, DueAt: usageTo}
	inv, created, err := s.RecordInvoice(ctx, in)
	if err != nil || !created {
		t.Fatalf("RecordInvoice = %v, %v; want created", created, err)
	}
	if inv.Total != rated.Total || inv.Status != store.InvoiceStatusDraft || len(inv.Lines) != len(rated.Lines) {
		t.Errorf("recorded invoice = %+v, want total %d in draft with %d lines", inv, rated.Total, len(rated.Lines))
	}
	for i, l := range inv.Lines {
		want := rated.Lines[i]
		if l.Amount != want.Amount || !l.Quantity.Equal(want.Quantity) || !l.UnitPrice.Equal(want.UnitPrice) || len(l.Tiers) != len(want.Tiers) {
			t.Errorf("line %d = %+v, want %+v", i, l.Line, want)
		}
		switch {
		case l.Meter == "" && l.Query != nil:
			t.Errorf("flat-fee line %d has a meter query %+v", i, l.Query)
		case l.Meter != "" && (l.Query == nil || l.Query.CustomerID != "acme" || !l.Query.From.Equal(period.Start) || !l.Query.To.Equal(usageTo)):
			t.Errorf("line %d query = %+v, want acme from %v to %v", i, l.Query, period.Start, usageTo)
		case l.Meter == "requests" && l.Query.Aggregation != "count":
			t.Errorf("requests line aggregation = %q, want the meter's count", l.Query.Aggregation)
		}
	}

	again := in
	again.Invoice.Total, again.Invoice.Lines = 1, nil
	inv2, created, err := s.RecordInvoice(ctx, again)
	if err != nil || created || inv2.Total != rated.Total || len(inv2.Lines) != len(rated.Lines) {
		t.Errorf("repeat RecordInvoice = total %d, %d lines, created %v, %v; want the first invoice unchanged", inv2.Total, len(inv2.Lines), created, err)
	}
	if err := s.SetInvoiceIssued(ctx, in.ID, "in_123", "open"); err != nil {
		t.Fatal(err)
	}
	period2 := billing.Period{Start: period.End, End: period.End.AddDate(0, 1, 0)}
	next := in
	next.ID, next.Kind, next.Invoice.PeriodStart, next.Invoice.PeriodEnd = "customer/acme/2026-04-01/cycle", store.KindCycle, period2.Start, period2.End
	if _, _, err := s.RecordInvoice(ctx, next); err != nil {
		t.Fatal(err)
	}
	list, err := s.Invoices(ctx, "acme")
	if err != nil || len(list) != 2 || list[0].ID != next.ID || list[1].StripeInvoiceID != "in_123" || list[1].Status != "open" {
		t.Errorf("Invoices(acme) = %+v, %v; want the cycle invoice first, then the issued threshold invoice", list, err)
	}
	ps, err := s.PeriodInvoices(ctx, "acme", period.Start)
	if err != nil || len(ps) != 1 || ps[0].ID != in.ID || len(ps[0].Lines) != len(rated.Lines) {
		t.Errorf("PeriodInvoices(March) = %+v, %v; want the threshold invoice with its lines", ps, err)
	}
	if _, err := s.Invoice(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Invoice(nope) error = %v, want ErrNotFound", err)
	}
}
