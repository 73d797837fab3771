package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/internal/testenv"
	"github.com/billcycle/billcycle/store"
)

// TestCreditIsConsumedOnceAndStableWithinAPeriod follows a customer's account
// credit through a threshold invoice in the current period and a cycle
// invoice of a period that has ended.
func TestCreditIsConsumedOnceAndStableWithinAPeriod(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	if _, _, err := s.CreateCustomer(ctx, store.Customer{ID: "acme", Email: "a@acme.test"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreatePlan(ctx, testPlan("pro")); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	sub := billing.Subscription{CustomerID: "acme", PlanID: "pro", Anchor: now.AddDate(0, -1, 0), Status: billing.Active, Currency: "usd", CreditBalance: 500}
	if _, _, err := s.PutSubscription(ctx, store.SubscriptionRecord{Subscription: sub}); err != nil {
		t.Fatal(err)
	}
	record := func(id string, start, end time.Time, credit int64) {
		t.Helper()
		inv := billing.Invoice{CustomerID: "acme", PlanID: "pro", Currency: "usd", PeriodStart: start, PeriodEnd: end,
			Subtotal: 1000, CreditApplied: credit, Total: 1000 - credit}
		for range 2 { // a retried activity records the same invoice again
			if _, _, err := s.RecordInvoice(ctx, store.NewInvoice{ID: id, CustomerID: "acme", Kind: store.KindThreshold, Invoice: inv}); err != nil {
				t.Fatal(err)
			}
		}
	}
	balances := func() (ledger, cycle int64) {
		t.Helper()
		rec, err := s.SubscriptionRecord(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		c, _, err := s.Subscription(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		return rec.CreditBalance, c.CreditBalance
	}

	// An ended period's invoice consumes 100 for good.
	record("customer/acme/old/cycle", now.AddDate(0, -2, 0), now.AddDate(0, -1, 0), 100)
	if ledger, cycle := balances(); ledger != 400 || cycle != 400 {
		t.Errorf("after an ended period's invoice: ledger %d, cycle view %d; want 400, 400", ledger, cycle)
	}
	// A threshold invoice of the running period consumes 150 from the ledger,
	// but the cycle keeps seeing the balance the period started with.
	record("customer/acme/now/threshold-1", now.AddDate(0, 0, -3), now.AddDate(0, 0, 27), 150)
	if ledger, cycle := balances(); ledger != 250 || cycle != 400 {
		t.Errorf("after this period's threshold invoice: ledger %d, cycle view %d; want 250, 400", ledger, cycle)
	}
	// The cycle saving a plan or threshold change must not write its copy back.
	c, th, _ := s.Subscription(ctx, "acme")
	if err := s.SaveSubscription(ctx, c, th); err != nil {
		t.Fatal(err)
	}
	if ledger, _ := balances(); ledger != 250 {
		t.Errorf("after SaveSubscription: ledger %d, want 250 (the cycle's copy must not resurrect spent credit)", ledger)
	}
}
