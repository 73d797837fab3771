// Package activities holds billcycle's Temporal activities: thin adapters
// from workflows to the store and to outside systems, each behind an interface
// declared here, so workflows stay deterministic and activities stay testable
// with fakes.
package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
)

// Customers is the part of the store the customer activities need.
type Customers interface {
	SetStripeCustomerID(ctx context.Context, customerID, stripeID string) error
}

// Payments is the payment provider (Stripe) as the activities see it.
type Payments interface {
	// EnsureCustomer creates the provider's customer for c, idempotently on
	// c.CustomerID, and returns the provider's id.
	EnsureCustomer(ctx context.Context, c CustomerRef) (string, error)
}

// CustomerRef identifies a customer to an outside system.
type CustomerRef struct {
	CustomerID string            `json:"customer_id"`
	Email      string            `json:"email"`
	Name       string            `json:"name"`
	Metadata   map[string]string `json:"metadata,omitempty"`
}

// Activities holds the dependencies of every activity. Workflows refer to its
// methods through a nil *Activities.
type Activities struct {
	Customers Customers
	Payments  Payments
}

// ErrPermanent marks an error an outside system will repeat on every retry
// (bad request, unknown customer); IsPermanent finds it in a chain.
var ErrPermanent = errors.New("permanent failure")

// nonRetryable turns permanent errors into non-retryable application errors
// with a type, and leaves everything else to Temporal's retry policy.
func nonRetryable(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrPermanent) {
		return temporal.NewNonRetryableApplicationError(err.Error(), "Permanent", err)
	}
	return err
}

// EnsureStripeCustomer creates (or finds) the customer in Stripe and records
// its Stripe id. Retrying it is harmless: the Stripe call is idempotent on our
// customer id and the store write is an overwrite with the same value.
func (a *Activities) EnsureStripeCustomer(ctx context.Context, c CustomerRef) (string, error) {
	id, err := a.Payments.EnsureCustomer(ctx, c)
	if err != nil {
		return "", nonRetryable(fmt.Errorf("create stripe customer for %s: %w", c.CustomerID, err))
	}
	if err := a.Customers.SetStripeCustomerID(ctx, c.CustomerID, id); err != nil {
		return "", fmt.Errorf("record stripe customer of %s: %w", c.CustomerID, err)
	}
	return id, nil
}
