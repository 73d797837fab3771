package worker

import (
	"context"
	"errors"
	"fmt"

	sdkworker "go.temporal.io/sdk/worker"

	"github.com/billcycle/billcycle/activities"
	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/integrations/stripe"
	"github.com/billcycle/billcycle/store"
)

// InvoiceActivities builds the invoice activities over deps.
func InvoiceActivities(d Deps) *activities.InvoiceActivities {
	return &activities.InvoiceActivities{Ledger: ledger{d.Store}, Stripe: invoiceIssuer{d.Stripe}}
}

// registerInvoices registers the invoice activities on w.
func registerInvoices(w sdkworker.Registry, d Deps) {
	w.RegisterActivity(InvoiceActivities(d))
}

// ledger adapts the store to activities.InvoiceLedger.
type ledger struct{ s *store.Store }

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errors.Join(activities.ErrNoSubscription, err)
	}
	return err
}

func (l ledger) Subscription(ctx context.Context, customerID string) (billing.Subscription, billing.Thresholds, error) {
	sub, th, err := l.s.Subscription(ctx, customerID)
	return sub, th, notFound(err)
}

func (l ledger) Plan(ctx context.Context, id string) (billing.Plan, error) {
	p, err := l.s.Plan(ctx, id)
	return p, notFound(err)
}

func (l ledger) CollectionTerms(ctx context.Context, customerID string) (activities.CollectionTerms, error) {
	c, err := l.s.Customer(ctx, customerID)
	if err != nil {
		return activities.CollectionTerms{}, notFound(err)
	}
	terms := activities.CollectionTerms{StripeCustomerID: c.StripeCustomerID, Method: activities.CollectChargeAutomatically}
	sub, err := l.s.SubscriptionRecord(ctx, customerID)
	switch {
	case err == nil:
		terms.Method, terms.DaysUntilDue = sub.CollectionMethod, sub.DaysUntilDue
	case !errors.Is(err, store.ErrNotFound):
		return activities.CollectionTerms{}, err
	}
	return terms, nil
}

func (l ledger) RecordInvoice(ctx context.Context, inv activities.LedgerInvoice) (activities.LedgerInvoice, error) {
	got, _, err := l.s.RecordInvoice(ctx, store.NewInvoice{
		ID: inv.ID, CustomerID: inv.CustomerID, Kind: inv.Kind, Invoice: inv.Invoice, UsageTo: inv.UsageTo,
		CollectionMethod: inv.CollectionMethod, DaysUntilDue: inv.DaysUntilDue, Status: inv.Status, DueAt: inv.DueAt,
	})
	if err != nil {
		return activities.LedgerInvoice{}, err
	}
	return activities.LedgerInvoice{
		ID: got.ID, CustomerID: got.CustomerID, Kind: got.Kind, Invoice: got.Billing(), UsageTo: inv.UsageTo,
		CollectionMethod: got.CollectionMethod, DaysUntilDue: got.DaysUntilDue, Status: got.Status,
		StripeInvoiceID: got.StripeInvoiceID, DueAt: got.DueAt,
	}, nil
}

func (l ledger) SetInvoiceIssued(ctx context.Context, invoiceID, stripeInvoiceID, status string) error {
	return l.s.SetInvoiceIssued(ctx, invoiceID, stripeInvoiceID, status)
}

// invoiceIssuer adapts the Stripe client to activities.InvoiceIssuer.
type invoiceIssuer struct{ c *stripe.Client }

func (i invoiceIssuer) IssueInvoice(ctx context.Context, req activities.StripeInvoiceRequest) (activities.StripeInvoiceResult, error) {
	if i.c == nil {
		return activities.StripeInvoiceResult{}, fmt.Errorf("issue invoice %s: no stripe client configured", req.InvoiceID)
	}
	in := stripe.InvoiceInput{
		InvoiceID: req.InvoiceID, StripeCustomerID: req.StripeCustomerID, Currency: req.Currency,
		Description: req.Description, CollectionMethod: req.CollectionMethod, DaysUntilDue: req.DaysUntilDue,
		Metadata: req.Metadata,
	}
	for _, l := range req.Lines {
		in.Lines = append(in.Lines, stripe.InvoiceLine{Description: l.Description, Quantity: l.Quantity, UnitAmountDecimal: l.UnitAmountDecimal, Amount: l.Amount})
	}
	inv, err := i.c.IssueInvoice(ctx, in)
	if err != nil {
		return activities.StripeInvoiceResult{}, classify(err)
	}
	return activities.StripeInvoiceResult{ID: inv.ID, Status: inv.Status, Total: inv.Total}, nil
}
