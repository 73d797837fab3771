package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/billcycle/billcycle/billing"
)

// Invoice kinds accepted by IssueInvoice.
const (
	InvoiceKindThreshold = "threshold"
	InvoiceKindCycle     = "cycle"
)

// Collection methods of CollectionTerms.
const (
	CollectChargeAutomatically = "charge_automatically"
	CollectSendInvoice         = "send_invoice"
)

// LedgerStatusDraft is the status of an invoice recorded in the ledger but
// not yet issued in Stripe; LedgerStatusPaid is given to zero-total
// invoices, which are never sent.
const (
	LedgerStatusDraft = "draft"
	LedgerStatusPaid  = "paid"
)

// Error types of the invoice activities' non-retryable errors.
const (
	// ErrTypeNoSubscription: the customer has no subscription (or its plan is gone).
	ErrTypeNoSubscription = "NoSubscription"
	// ErrTypeInvalidInvoice: the invoice input can never be issued as given.
	ErrTypeInvalidInvoice = "InvalidInvoice"
)

// ErrNoSubscription is returned by an InvoiceLedger when the customer has no
// subscription, or its plan does not exist.
var ErrNoSubscription = errors.New("no subscription")

// CollectionTerms say how a customer's invoices are collected.
type CollectionTerms struct {
	// StripeCustomerID is the customer's Stripe id; empty before onboarding.
	StripeCustomerID string
	// Method is CollectChargeAutomatically or CollectSendInvoice.
	Method string
	// DaysUntilDue is the payment term of CollectSendInvoice.
	DaysUntilDue int
}

// LedgerInvoice is an invoice to record in, or as recorded in, the ledger.
type LedgerInvoice struct {
	ID         string
	CustomerID string
	Kind       string
	Invoice    billing.Invoice
	// UsageTo ends the meter query of each line: usage in
	// [Invoice.PeriodStart, UsageTo) is what the amounts were rated on.
	UsageTo          time.Time
	CollectionMethod string
	DaysUntilDue     int
	Status           string
	StripeInvoiceID  string
	DueAt            time.Time
}

// InvoiceLedger is the part of the store the invoice activities use.
type InvoiceLedger interface {
	// Subscription returns the customer's terms and thresholds, or an error
	// wrapping ErrNoSubscription.
	Subscription(ctx context.Context, customerID string) (billing.Subscription, billing.Thresholds, error)
	// Plan returns a plan, or an error wrapping ErrNoSubscription.
	Plan(ctx context.Context, id string) (billing.Plan, error)
	// CollectionTerms returns how the customer's invoices are collected.
	CollectionTerms(ctx context.Context, customerID string) (CollectionTerms, error)
	// RecordInvoice stores inv unless an invoice with its ID exists, and
	// returns the stored invoice either way (the first version wins).
	RecordInvoice(ctx context.Context, inv LedgerInvoice) (LedgerInvoice, error)
	// SetInvoiceIssued records the Stripe invoice that bills invoiceID.
	SetInvoiceIssued(ctx context.Context, invoiceID, stripeInvoiceID, status string) error
}

// StripeLine is one line of an invoice as sent to Stripe.
type StripeLine struct {
	Description string
	Quantity    decimal.Decimal
	// UnitAmountDecimal is the unit price in minor units (informational).
	UnitAmountDecimal decimal.Decimal
	// Amount is what Stripe bills for the line, in minor units.
	Amount int64
}

// StripeInvoiceRequest is an invoice to issue in Stripe.
type StripeInvoiceRequest struct {
	InvoiceID        string
	StripeCustomerID string
	Currency         string
	Description      string
	Lines            []StripeLine
	CollectionMethod string
	DaysUntilDue     int
	Metadata         map[string]string
}

// StripeInvoiceResult is the Stripe invoice that bills one of ours.
type StripeInvoiceResult struct {
	ID     string
	Status string
	Total  int64
}

// InvoiceIssuer issues invoices in Stripe, idempotently on InvoiceID.
// Errors Stripe would repeat on every retry wrap ErrPermanent.
type InvoiceIssuer interface {
	IssueInvoice(ctx context.Context, req StripeInvoiceRequest) (StripeInvoiceResult, error)
}

// InvoiceActivities loads subscriptions and issues invoices. Workflows refer
// to its methods through a nil *InvoiceActivities.
type InvoiceActivities struct {
	Ledger InvoiceLedger
	Stripe InvoiceIssuer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// SubscriptionInfo is what a workflow needs to rate a customer's cycle.
type SubscriptionInfo struct {
	Subscription billing.Subscription `json:"subscription"`
	Plan         billing.Plan         `json:"plan"`
	Thresholds   billing.Thresholds   `json:"thresholds"`
}

// LoadSubscription returns the customer's subscription, its plan and its
// billing thresholds. A customer without a subscription is a non-retryable
// error of type ErrTypeNoSubscription.
func (a *InvoiceActivities) LoadSubscription(ctx context.Context, customerID string) (SubscriptionInfo, error) {
	sub, th, err := a.Ledger.Subscription(ctx, customerID)
	if err != nil {
		return SubscriptionInfo{}, noSubscription(fmt.Errorf("load subscription of %s: %w", customerID, err))
	}
	plan, err := a.Ledger.Plan(ctx, sub.PlanID)
	if err != nil {
		return SubscriptionInfo{}, noSubscription(fmt.Errorf("load plan %s of %s: %w", sub.PlanID, customerID, err))
	}
	return SubscriptionInfo{Subscription: sub, Plan: plan, Thresholds: th}, nil
}

func noSubscription(err error) error {
	if errors.Is(err, ErrNoSubscription) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeNoSubscription, err)
	}
	return err
}

// IssueInvoiceInput is an invoice to issue.
type IssueInvoiceInput struct {
	// InvoiceID is stable and derived from the workflow's identity, for
	// example "customer/acme/2026-11-01/threshold-1" or ".../cycle".
	InvoiceID  string `json:"invoice_id"`
	CustomerID string `json:"customer_id"`
	// Kind is "threshold" or "cycle".
	Kind string `json:"kind"`
	// Invoice holds the amounts to bill: an Increment over earlier invoices
	// of the same period.
	Invoice billing.Invoice `json:"invoice"`
	// UsageTo, optional, is the end (exclusive) of the usage the invoice was
	// rated on; the lines' meter queries cover [Invoice.PeriodStart,
	// UsageTo). Zero means Invoice.PeriodEnd for cycle invoices and the time
	// the invoice is recorded for threshold invoices.
	UsageTo time.Time `json:"usage_to,omitzero"`
}

// IssuedInvoice is an invoice as recorded and issued.
type IssuedInvoice struct {
	InvoiceID       string    `json:"invoice_id"`
	StripeInvoiceID string    `json:"stripe_invoice_id,omitempty"`
	Status          string    `json:"status"`
	Total           int64     `json:"total"`
	DueAt           time.Time `json:"due_at"`
}

// IssueInvoice records the invoice in the ledger with its lines and the meter
// query behind each line (idempotent on InvoiceID: a repeat returns the first
// recording), issues it in Stripe under the same InvoiceID and records
// Stripe's id and status. Running it twice yields one invoice in both
// places. A zero-total invoice is recorded as paid and not sent to Stripe; a
// negative total, an unknown kind or a permanent Stripe error is a
// non-retryable error.
func (a *InvoiceActivities) IssueInvoice(ctx context.Context, in IssueInvoiceInput) (IssuedInvoice, error) {
	defer keepHeartbeating(ctx, 3*time.Second)()
	if err := validateIssue(in); err != nil {
		return IssuedInvoice{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInvoice, err)
	}
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	now = now.UTC()
	terms, err := a.Ledger.CollectionTerms(ctx, in.CustomerID)
	if err != nil {
		return IssuedInvoice{}, noSubscription(fmt.Errorf("issue invoice %s: %w", in.InvoiceID, err))
	}
	rec := LedgerInvoice{
		ID: in.InvoiceID, CustomerID: in.CustomerID, Kind: in.Kind, Invoice: in.Invoice, UsageTo: in.UsageTo,
		CollectionMethod: terms.Method, DaysUntilDue: terms.DaysUntilDue, Status: LedgerStatusDraft, DueAt: now,
	}
	if rec.UsageTo.IsZero() {
		rec.UsageTo = in.Invoice.PeriodEnd
		if in.Kind == InvoiceKindThreshold && now.Before(rec.UsageTo) {
			rec.UsageTo = now
		}
	}
	if terms.Method == CollectSendInvoice {
		rec.DueAt = now.AddDate(0, 0, terms.DaysUntilDue)
	}
	if in.Invoice.Total == 0 {
		rec.Status = LedgerStatusPaid
	}
	got, err := a.Ledger.RecordInvoice(ctx, rec)
	if err != nil {
		return IssuedInvoice{}, fmt.Errorf("issue invoice %s: %w", in.InvoiceID, err)
	}
	out := IssuedInvoice{InvoiceID: got.ID, StripeInvoiceID: got.StripeInvoiceID, Status: got.Status, Total: got.Invoice.Total, DueAt: got.DueAt}
	if got.Status != LedgerStatusDraft || got.Invoice.Total == 0 {
		return out, nil // issued before, or nothing to collect
	}
	if terms.StripeCustomerID == "" {
		return IssuedInvoice{}, fmt.Errorf("issue invoice %s: customer %s has no stripe customer yet", in.InvoiceID, in.CustomerID)
	}
	res, err := a.Stripe.IssueInvoice(ctx, stripeRequest(got, terms.StripeCustomerID))
	if err != nil {
		return IssuedInvoice{}, nonRetryable(fmt.Errorf("issue invoice %s in stripe: %w", in.InvoiceID, err))
	}
	if err := a.Ledger.SetInvoiceIssued(ctx, got.ID, res.ID, res.Status); err != nil {
		return IssuedInvoice{}, fmt.Errorf("record stripe invoice of %s: %w", in.InvoiceID, err)
	}
	out.StripeInvoiceID, out.Status = res.ID, res.Status
	return out, nil
}

func validateIssue(in IssueInvoiceInput) error {
	switch {
	case in.InvoiceID == "":
		return errors.New("issue invoice: invoice id is required")
	case in.CustomerID == "":
		return fmt.Errorf("issue invoice %s: customer id is required", in.InvoiceID)
	case in.Kind != InvoiceKindThreshold && in.Kind != InvoiceKindCycle:
		return fmt.Errorf("issue invoice %s: kind %q is neither threshold nor cycle", in.InvoiceID, in.Kind)
	case in.Invoice.Total < 0:
		return fmt.Errorf("issue invoice %s: total %d is negative; credit the customer's balance instead", in.InvoiceID, in.Invoice.Total)
	}
	return nil
}

// stripeRequest turns a recorded invoice into Stripe lines: every rated
// line, then the discount, tax and credit as lines of their own, so Stripe's
// total is exactly ours.
func stripeRequest(inv LedgerInvoice, stripeCustomerID string) StripeInvoiceRequest {
	b := inv.Invoice
	req := StripeInvoiceRequest{
		InvoiceID:        inv.ID,
		StripeCustomerID: stripeCustomerID,
		Currency:         string(b.Currency),
		Description: fmt.Sprintf("%s invoice for %s to %s", inv.Kind,
			b.PeriodStart.UTC().Format(time.DateOnly), b.PeriodEnd.UTC().Format(time.DateOnly)),
		CollectionMethod: inv.CollectionMethod,
		DaysUntilDue:     inv.DaysUntilDue,
		Metadata:         map[string]string{"billcycle_customer_id": inv.CustomerID, "billcycle_kind": inv.Kind},
	}
	for _, l := range b.Lines {
		sl := StripeLine{Description: l.Description, Quantity: l.BillableQuantity, UnitAmountDecimal: l.UnitPrice, Amount: l.Amount}
		switch {
		case l.Meter == "": // a flat fee
			sl.Quantity = decimal.Zero
		case l.Model == billing.Package:
			sl.Description = fmt.Sprintf("%s (%s units in packages)", l.Description, l.BillableQuantity)
			sl.Quantity = l.Packages
		case len(l.Tiers) > 0 || l.UnitPrice.IsZero():
			// Stripe would print "quantity × 0"; say what was billed instead.
			sl.Description = fmt.Sprintf("%s (%s units, %s tiers)", l.Description, l.BillableQuantity, l.Model)
			sl.Quantity = decimal.Zero
		}
		req.Lines = append(req.Lines, sl)
	}
	for _, adj := range []struct {
		text   string
		amount int64
	}{{"Discount", -b.Discount}, {"Tax", b.Tax}, {"Account credit applied", -b.CreditApplied}} {
		if adj.amount != 0 {
			req.Lines = append(req.Lines, StripeLine{Description: adj.text, Amount: adj.amount})
		}
	}
	return req
}

// keepHeartbeating records a heartbeat every interval until the returned
// stop is called, so the server learns within the heartbeat timeout that
// this activity's worker died during a long call (outside an activity it
// does nothing).
func keepHeartbeating(ctx context.Context, interval time.Duration) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}
