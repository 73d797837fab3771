package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/internal/testenv"
	"github.com/billcycle/billcycle/store"
)

func TestApplyInvoiceEventToleratesOrder(t *testing.T) {
	t0 := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	ev := func(status string, sec int) store.InvoiceState {
		return store.InvoiceState{StripeInvoiceID: "in_1", InvoiceID: "inv_1", CustomerID: "acme", Status: status,
			EventCreated: t0.Add(time.Duration(sec) * time.Second)}
	}
	tests := []struct {
		name   string
		events []store.InvoiceState
		want   string
	}{
		{"in order", []store.InvoiceState{ev("open", 0), ev("open", 10), ev("paid", 20)}, "paid"},
		{"paid before the failure it ended", []store.InvoiceState{ev("paid", 20), ev("open", 10)}, "paid"},
		{"paid with the same second as a failure", []store.InvoiceState{ev("paid", 10), ev("open", 10)}, "paid"},
		{"void is final", []store.InvoiceState{ev("void", 5), ev("open", 30)}, "void"},
		{"older open does not undo uncollectible", []store.InvoiceState{ev("uncollectible", 20), ev("open", 10)}, "uncollectible"},
		{"uncollectible then paid", []store.InvoiceState{ev("uncollectible", 10), ev("paid", 20)}, "paid"},
		{"newer open wins over older uncollectible", []store.InvoiceState{ev("uncollectible", 10), ev("open", 20)}, "open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := testenv.Store(t)
			ctx := context.Background()
			var got store.InvoiceState
			for _, e := range tt.events {
				var err error
				if got, err = st.ApplyInvoiceEvent(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
			if got.Status != tt.want {
				t.Errorf("after %v: ApplyInvoiceEvent status = %q, want %q", tt.events, got.Status, tt.want)
			}
			if s, err := st.InvoiceStatus(ctx, "inv_1", ""); err != nil || s != tt.want {
				t.Errorf("InvoiceStatus(inv_1) = %q, %v; want %q", s, err, tt.want)
			}
		})
	}
}

func TestInvoiceStateKeepsIDsForDisputes(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Second)
	if _, err := st.ApplyInvoiceEvent(ctx, store.InvoiceState{StripeInvoiceID: "in_2", InvoiceID: "inv_2", CustomerID: "acme",
		Status: "open", ChargeID: "ch_1", PaymentIntentID: "pi_1", EventCreated: t0}); err != nil {
		t.Fatal(err)
	}
	// A later event without ids (Stripe sends only what it has) keeps them.
	if _, err := st.ApplyInvoiceEvent(ctx, store.InvoiceState{StripeInvoiceID: "in_2", Status: "open", EventCreated: t0.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	for _, q := range [][2]string{{"ch_1", ""}, {"", "pi_1"}} {
		got, err := st.InvoiceStateForPayment(ctx, q[0], q[1])
		if err != nil || got.InvoiceID != "inv_2" || got.CustomerID != "acme" {
			t.Errorf("InvoiceStateForPayment(%q, %q) = %+v, %v; want inv_2 of acme", q[0], q[1], got, err)
		}
	}
	if _, err := st.InvoiceStateForPayment(ctx, "ch_unknown", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("InvoiceStateForPayment(ch_unknown) error = %v, want ErrNotFound", err)
	}
	if s, err := st.InvoiceStatus(ctx, "", "in_unknown"); err != nil || s != "" {
		t.Errorf("InvoiceStatus(in_unknown) = %q, %v; want empty", s, err)
	}
}

func TestClaimStripeEvent(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	e := store.StripeEvent{ID: "evt_1", Type: "invoice.paid", ObjectID: "in_1", CreatedAt: time.Now()}
	steps := []struct {
		do            func() (bool, error)
		wantProcessed bool
	}{
		{func() (bool, error) { return st.ClaimStripeEvent(ctx, e) }, false},
		// Not finished yet (the first delivery failed half-way): claimed again.
		{func() (bool, error) { return st.ClaimStripeEvent(ctx, e) }, false},
		{func() (bool, error) {
			if err := st.FinishStripeEvent(ctx, e.ID, "signalled"); err != nil {
				return false, err
			}
			return st.ClaimStripeEvent(ctx, e)
		}, true},
	}
	for i, s := range steps {
		got, err := s.do()
		if err != nil || got != s.wantProcessed {
			t.Errorf("delivery %d: ClaimStripeEvent = %v, %v; want processed %v", i+1, got, err, s.wantProcessed)
		}
	}
	if n, _ := st.CountStripeEvents(ctx); n != 1 {
		t.Errorf("stored events = %d, want 1", n)
	}
	got, err := st.StripeEventByID(ctx, "evt_1")
	if err != nil || got.Outcome != "signalled" || got.ProcessedAt == nil {
		t.Errorf("StripeEventByID = %+v, %v; want processed with its outcome", got, err)
	}
}

func TestDunningPolicyPerPlan(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	if _, ok, err := st.DunningPolicy(ctx, "pro"); ok || err != nil {
		t.Fatalf("DunningPolicy(pro) before any = found %v, %v; want none", ok, err)
	}
	p := billing.DefaultPolicy()
	p.ID = "pro-v1"
	for i, wantReplaced := range []bool{false, true} {
		replaced, err := st.PutDunningPolicy(ctx, "pro", p)
		if err != nil || replaced != wantReplaced {
			t.Errorf("PutDunningPolicy #%d = %v, %v; want replaced %v", i+1, replaced, err, wantReplaced)
		}
	}
	got, ok, err := st.DunningPolicy(ctx, "pro")
	if err != nil || !ok || got.ID != "pro-v1" || !slices.Equal(got.Steps, p.Steps) {
		t.Errorf("DunningPolicy(pro) = %+v, %v, %v; want %+v", got, ok, err, p)
	}
}

func TestOverdueCohort(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for _, c := range []string{"acme", "bolt", "core"} {
		if _, _, err := st.CreateCustomer(ctx, store.Customer{ID: c, Email: c + "@x.test", Name: c}); err != nil {
			t.Fatal(err)
		}
	}
	inv := func(id, customer, status string, total int64, dueDaysAgo int) {
		t.Helper()
		due := now.Add(-time.Duration(dueDaysAgo) * 24 * time.Hour)
		_, err := st.Pool().Exec(ctx, `INSERT INTO invoices (id, customer_id, kind, period_start, period_end, currency,
			subtotal, discount, tax, credit_applied, total, status, stripe_invoice_id, due_at)
			VALUES ($1, $2, 'cycle', $3, $3, 'usd', $4, 0, 0, 0, $4, $5, $6, $3)`, id, customer, due, total, status, "in_"+id)
		if err != nil {
			t.Fatal(err)
		}
	}
	inv("a1", "acme", "open", 1000, 60)
	inv("a2", "acme", "open", 500, 45)
	inv("a3", "acme", "open", 700, 5) // not yet a month overdue
	inv("b1", "bolt", "open", 100, 40)
	inv("b2", "bolt", "open", 200, 35) // paid, as only the webhook knows:
	if _, err := st.ApplyInvoiceEvent(ctx, store.InvoiceState{StripeInvoiceID: "in_b2", Status: "paid", EventCreated: now}); err != nil {
		t.Fatal(err)
	}
	inv("c1", "core", "open", 10, 90)
	inv("c2", "core", "void", 10, 90)
	inv("c3", "core", "paid", 10, 90)

	month := now.Add(-30 * 24 * time.Hour)
	tests := []struct {
		min  int
		want []string
	}{
		{2, []string{"acme"}},
		{1, []string{"acme", "core", "bolt"}},
		{3, nil},
	}
	for _, tt := range tests {
		got, err := st.OverdueCohort(ctx, tt.min, month, 100)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range got {
			ids = append(ids, c.CustomerID)
		}
		if !slices.Equal(ids, tt.want) {
			t.Errorf("OverdueCohort(min %d, due over 30 days ago) = %v, want %v", tt.min, ids, tt.want)
		}
	}
	got, _ := st.OverdueCohort(ctx, 2, month, 100)
	if len(got) == 1 {
		a := got[0]
		if a.Outstanding != 2 || a.Amounts["usd"] != 1500 || !slices.Equal(a.InvoiceIDs, []string{"a1", "a2"}) ||
			!a.OldestDue.Equal(now.Add(-60*24*time.Hour)) || a.Email != "acme@x.test" {
			t.Errorf("acme's cohort row = %+v, want 2 invoices a1, a2 for 1500 usd, oldest due 60 days ago", a)
		}
	}
}

func TestCustomerByStripeID(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	if _, _, err := st.CreateCustomer(ctx, store.Customer{ID: "acme", Email: "a@x.test"}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetStripeCustomerID(ctx, "acme", "cus_9"); err != nil {
		t.Fatal(err)
	}
	if c, err := st.CustomerByStripeID(ctx, "cus_9"); err != nil || c.ID != "acme" {
		t.Errorf("CustomerByStripeID(cus_9) = %+v, %v; want acme", c, err)
	}
	if _, err := st.CustomerByStripeID(ctx, "cus_none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CustomerByStripeID(cus_none) error = %v, want ErrNotFound", err)
	}
}

// TestInvoiceLedgerFollowsMergedStripeState checks that our invoice row shows
// the order-tolerant merged status: a failure delivered after the payment
// leaves the invoice paid.
func TestInvoiceLedgerFollowsMergedStripeState(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	if _, _, err := s.CreateCustomer(ctx, store.Customer{ID: "acme", Email: "a@acme.test"}); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	inv := billing.Invoice{CustomerID: "acme", PlanID: "pro", Currency: "usd", PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0), Subtotal: 900, Total: 900}
	id := "customer/acme/2026-03-01/cycle"
	if _, _, err := s.RecordInvoice(ctx, store.NewInvoice{ID: id, CustomerID: "acme", Kind: store.KindCycle, Invoice: inv}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
	for _, ev := range []struct {
		status string
		at     time.Time
		want   string
	}{
		{"open", t0, "open"},
		{"paid", t0.Add(2 * time.Hour), "paid"},
		{"open", t0.Add(time.Hour), "paid"}, // the earlier failure, delivered late
	} {
		if _, err := s.ApplyInvoiceEvent(ctx, store.InvoiceState{StripeInvoiceID: "in_1", InvoiceID: id, CustomerID: "acme",
			Status: ev.status, AmountRemaining: 900, Currency: "usd", EventCreated: ev.at}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Invoice(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != ev.want {
			t.Errorf("after a %s event at %s: invoice status %q, want %q", ev.status, ev.at.Format(time.Kitchen), got.Status, ev.want)
		}
	}
}

// TestIssuingDoesNotUndoAPaymentWebhook covers an automatic charge whose
// invoice.paid webhook arrives before the issuing activity records Stripe's
// answer ("open").
func TestIssuingDoesNotUndoAPaymentWebhook(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	if _, _, err := s.CreateCustomer(ctx, store.Customer{ID: "acme", Email: "a@acme.test"}); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	inv := billing.Invoice{CustomerID: "acme", Currency: "usd", PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0), Subtotal: 900, Total: 900}
	id := "customer/acme/2026-03-01/threshold-1"
	if _, _, err := s.RecordInvoice(ctx, store.NewInvoice{ID: id, CustomerID: "acme", Kind: store.KindThreshold, Invoice: inv}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyInvoiceEvent(ctx, store.InvoiceState{StripeInvoiceID: "in_9", InvoiceID: id, CustomerID: "acme",
		Status: "paid", Currency: "usd", EventCreated: start}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetInvoiceIssued(ctx, id, "in_9", "open"); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Invoice(ctx, id)
	if got.Status != "paid" || got.StripeInvoiceID != "in_9" {
		t.Errorf("after a late issue record: status %q, stripe id %q; want paid, in_9", got.Status, got.StripeInvoiceID)
	}
}
