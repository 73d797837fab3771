package activities

import (
	"context"
	"fmt"

	"github.com/billcycle/billcycle/billing"
)

// DunningStore is the part of the store the dunning activities need.
type DunningStore interface {
	// DunningPolicy returns the policy stored for planID and whether one is.
	DunningPolicy(ctx context.Context, planID string) (billing.Policy, bool, error)
	// InvoiceStatus returns the latest status Stripe reported for the invoice
	// (by billcycle id or Stripe id), or "" when no event told us yet.
	InvoiceStatus(ctx context.Context, invoiceID, stripeInvoiceID string) (string, error)
}

// Collector marks invoices uncollectible at the payment provider (Stripe).
type Collector interface {
	// MarkUncollectible marks the provider's invoice uncollectible once per
	// idempotency key; doing it again is harmless.
	MarkUncollectible(ctx context.Context, stripeInvoiceID, idempotencyKey string) error
}

// DunningActivities are the activities of the Dunning workflow that belong to
// dunning itself; notices and access go through NoticeActivities. Workflows
// refer to its methods through a nil *DunningActivities.
type DunningActivities struct {
	Store     DunningStore
	Collector Collector
}

// DunningInvoiceRef names the invoice a dunning sequence is about.
type DunningInvoiceRef struct {
	InvoiceID       string `json:"invoice_id"`
	StripeInvoiceID string `json:"stripe_invoice_id,omitempty"`
}

// MarkUncollectibleInput asks to write an invoice off as bad debt.
type MarkUncollectibleInput struct {
	DedupeKey       string `json:"dedupe_key"`
	StripeInvoiceID string `json:"stripe_invoice_id"`
}

// LoadDunningPolicy returns the dunning policy of planID: the one set through
// the API, or billing.DefaultPolicy when the plan has none.
func (a *DunningActivities) LoadDunningPolicy(ctx context.Context, planID string) (billing.Policy, error) {
	if planID != "" {
		p, ok, err := a.Store.DunningPolicy(ctx, planID)
		if err != nil {
			return billing.Policy{}, fmt.Errorf("load dunning policy of plan %s: %w", planID, err)
		}
		if ok {
			return p, nil
		}
	}
	return billing.DefaultPolicy(), nil
}

// DunningInvoiceStatus returns the latest Stripe status recorded for the
// invoice from webhooks ("open", "paid", "void", "uncollectible"), or "" when
// none arrived. The Dunning workflow asks it once at start, so an invoice paid
// before its failed-payment event was processed is never dunned.
func (a *DunningActivities) DunningInvoiceStatus(ctx context.Context, ref DunningInvoiceRef) (string, error) {
	st, err := a.Store.InvoiceStatus(ctx, ref.InvoiceID, ref.StripeInvoiceID)
	if err != nil {
		return "", fmt.Errorf("invoice status of %s: %w", ref.InvoiceID, err)
	}
	return st, nil
}

// MarkInvoiceUncollectible marks the Stripe invoice uncollectible with the
// step's dedupe key as the idempotency key.
func (a *DunningActivities) MarkInvoiceUncollectible(ctx context.Context, in MarkUncollectibleInput) error {
	if in.StripeInvoiceID == "" {
		return nonRetryable(fmt.Errorf("mark uncollectible: stripe invoice id is required: %w", ErrPermanent))
	}
	if err := a.Collector.MarkUncollectible(ctx, in.StripeInvoiceID, in.DedupeKey); err != nil {
		return nonRetryable(fmt.Errorf("mark invoice %s uncollectible: %w", in.StripeInvoiceID, err))
	}
	return nil
}
