package activities_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/billcycle/billcycle/activities"
	"github.com/billcycle/billcycle/billing"
)

// memLedger is an in-memory InvoiceLedger.
type memLedger struct {
	terms    activities.CollectionTerms
	invoices map[string]activities.LedgerInvoice
}

func (m *memLedger) Subscription(_ context.Context, id string) (billing.Subscription, billing.Thresholds, error) {
	if id != "acme" {
		return billing.Subscription{}, billing.Thresholds{}, activities.ErrNoSubscription
	}
	return billing.Subscription{CustomerID: "acme", PlanID: "pro"}, billing.Thresholds{AmountGTE: 100}, nil
}

func (m *memLedger) Plan(_ context.Context, id string) (billing.Plan, error) {
	return billing.Plan{ID: id}, nil
}

func (m *memLedger) CollectionTerms(context.Context, string) (activities.CollectionTerms, error) {
	return m.terms, nil
}

func (m *memLedger) RecordInvoice(_ context.Context, inv activities.LedgerInvoice) (activities.LedgerInvoice, error) {
	if got, ok := m.invoices[inv.ID]; ok {
		return got, nil
	}
	m.invoices[inv.ID] = inv
	return inv, nil
}

func (m *memLedger) SetInvoiceIssued(_ context.Context, id, stripeID, status string) error {
	inv := m.invoices[id]
	inv.StripeInvoiceID, inv.Status = stripeID, status
	m.invoices[id] = inv
	return nil
}

// stubIssuer answers every call with err, or an open invoice.
type stubIssuer struct {
	calls []activities.StripeInvoiceRequest
	err   error
}

func (s *stubIssuer) IssueInvoice(_ context.Context, req activities.StripeInvoiceRequest) (activities.StripeInvoiceResult, error) {
	s.calls = append(s.calls, req)
	if s.err != nil {
		return activities.StripeInvoiceResult{}, s.err
	}
	var total int64
	for _, l := range req.Lines {
		total += l.Amount
	}
	return activities.StripeInvoiceResult{ID: "in_1", Status: "open", Total: total}, nil
}

func TestIssueInvoiceOutcomes(t *testing.T) {
	inv := billing.Invoice{Currency: "usd", Lines: []billing.Line{{Product: "api", Description: "API", Amount: 1000}},
		Subtotal: 1000, Discount: 100, Tax: 74, Total: 974}
	zero := billing.Invoice{Currency: "usd", Lines: []billing.Line{{Product: "api", Description: "API"}}}
	negative := inv
	negative.Total = -5
	tests := []struct {
		name         string
		in           billing.Invoice
		kind         string
		stripeErr    error
		wantCalls    int
		wantStatus   string
		nonRetryable string // error type of a non-retryable error; "" with wantErr means retryable
		wantErr      bool
	}{
		{name: "issued", in: inv, kind: "cycle", wantCalls: 1, wantStatus: "open"},
		{name: "zero total is not sent", in: zero, kind: "cycle", wantCalls: 0, wantStatus: "paid"},
		{name: "negative total", in: negative, kind: "cycle", wantErr: true, nonRetryable: activities.ErrTypeInvalidInvoice},
		{name: "unknown kind", in: inv, kind: "weekly", wantErr: true, nonRetryable: activities.ErrTypeInvalidInvoice},
		{name: "permanent stripe error", in: inv, kind: "cycle", stripeErr: errors.Join(activities.ErrPermanent, errors.New("card declined")),
			wantCalls: 1, wantErr: true, nonRetryable: "Permanent"},
		{name: "transient stripe error", in: inv, kind: "cycle", stripeErr: errors.New("503"), wantCalls: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			led := &memLedger{terms: activities.CollectionTerms{StripeCustomerID: "cus_1", Method: activities.CollectChargeAutomatically},
				invoices: map[string]activities.LedgerInvoice{}}
			iss := &stubIssuer{err: tt.stripeErr}
			a := &activities.InvoiceActivities{Ledger: led, Stripe: iss, Now: func() time.Time { return time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC) }}
			out, err := a.IssueInvoice(context.Background(), activities.IssueInvoiceInput{InvoiceID: "customer/acme/x", CustomerID: "acme", Kind: tt.kind, Invoice: tt.in})
			if len(iss.calls) != tt.wantCalls {
				t.Errorf("IssueInvoice made %d stripe calls, want %d", len(iss.calls), tt.wantCalls)
			}
			if tt.wantErr {
				var appErr *temporal.ApplicationError
				isNR := errors.As(err, &appErr) && appErr.NonRetryable()
				switch {
				case err == nil:
					t.Fatalf("IssueInvoice = %+v, want an error", out)
				case tt.nonRetryable != "" && (!isNR || appErr.Type() != tt.nonRetryable):
					t.Errorf("IssueInvoice error = %v, want non-retryable %s", err, tt.nonRetryable)
				case tt.nonRetryable == "" && isNR:
					t.Errorf("IssueInvoice error = %v, want retryable", err)
				}
				return
			}
			if err != nil || out.Status != tt.wantStatus || out.Total != tt.in.Total {
				t.Errorf("IssueInvoice = %+v, %v; want status %s total %d", out, err, tt.wantStatus, tt.in.Total)
			}
		})
	}
}

func TestIssueInvoiceSendsAdjustmentsAsLines(t *testing.T) {
	led := &memLedger{terms: activities.CollectionTerms{StripeCustomerID: "cus_1", Method: activities.CollectSendInvoice, DaysUntilDue: 30},
		invoices: map[string]activities.LedgerInvoice{}}
	iss := &stubIssuer{}
	now := time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)
	a := &activities.InvoiceActivities{Ledger: led, Stripe: iss, Now: func() time.Time { return now }}
	inv := billing.Invoice{Currency: "usd", Lines: []billing.Line{{Product: "api", Description: "API", Amount: 1000}},
		Subtotal: 1000, Discount: 100, Tax: 74, CreditApplied: 50, Total: 924}
	out, err := a.IssueInvoice(context.Background(), activities.IssueInvoiceInput{InvoiceID: "i1", CustomerID: "acme", Kind: "threshold", Invoice: inv})
	if err != nil {
		t.Fatal(err)
	}
	if !out.DueAt.Equal(now.AddDate(0, 0, 30)) {
		t.Errorf("DueAt = %v, want 30 days after %v", out.DueAt, now)
	}
	req := iss.calls[0]
	var sum int64
	var texts []string
	for _, l := range req.Lines {
		sum += l.Amount
		texts = append(texts, l.Description)
	}
	if sum != inv.Total || len(req.Lines) != 4 || req.CollectionMethod != "send_invoice" || req.DaysUntilDue != 30 {
		t.Errorf("stripe request lines %v sum to %d (%s/%d), want 4 lines summing to %d, send_invoice/30", texts, sum, req.CollectionMethod, req.DaysUntilDue, inv.Total)
	}
	if _, err := a.IssueInvoice(context.Background(), activities.IssueInvoiceInput{InvoiceID: "i1", CustomerID: "acme", Kind: "threshold", Invoice: inv}); err != nil || len(iss.calls) != 1 {
		t.Errorf("second IssueInvoice: %v, %d stripe calls in all; want no new call", err, len(iss.calls))
	}
}

func TestLoadSubscriptionWithoutOneIsPermanent(t *testing.T) {
	a := &activities.InvoiceActivities{Ledger: &memLedger{}}
	info, err := a.LoadSubscription(context.Background(), "acme")
	if err != nil || info.Plan.ID != "pro" || info.Thresholds.AmountGTE != 100 {
		t.Errorf("LoadSubscription(acme) = %+v, %v", info, err)
	}
	var appErr *temporal.ApplicationError
	if _, err := a.LoadSubscription(context.Background(), "nobody"); !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeNoSubscription || !appErr.NonRetryable() {
		t.Errorf("LoadSubscription(nobody) error = %v, want non-retryable %s", err, activities.ErrTypeNoSubscription)
	}
}
