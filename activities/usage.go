package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
)

// UsageStore is the part of the store the usage activities need.
type UsageStore interface {
	// MeterTotals returns the customer's total per active meter slug for
	// event time in [from, to).
	MeterTotals(ctx context.Context, customerID string, from, to time.Time) (map[string]decimal.Decimal, error)
	// SetWatchLevels replaces the customer's watch levels for the period
	// starting at from.
	SetWatchLevels(ctx context.Context, customerID string, from time.Time, levels map[string]decimal.Decimal) error
}

// UsageActivities reads metered usage and sets the levels at which
// ingestion signals the billing workflow. Workflows refer to its methods
// through a nil *UsageActivities (or by the names ReadUsage and
// SetWatchLevels).
type UsageActivities struct {
	Usage UsageStore
}

// ReadUsageInput asks for a customer's total per meter over event time in
// [From, To).
type ReadUsageInput struct {
	CustomerID string    `json:"customer_id"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
}

// SetWatchLevelsInput sets, for the period starting at From, the total per
// meter slug at which ingestion signals the customer's workflow once.
type SetWatchLevelsInput struct {
	CustomerID string                     `json:"customer_id"`
	From       time.Time                  `json:"from"`
	Levels     map[string]decimal.Decimal `json:"levels"`
}

// ReadUsage returns the customer's total per meter slug (every active meter,
// zero when unused) over [From, To), from the rollups. A range that ends
// before it starts is a permanent error.
func (a *UsageActivities) ReadUsage(ctx context.Context, in ReadUsageInput) (map[string]decimal.Decimal, error) {
	if in.CustomerID == "" || in.To.Before(in.From) {
		return nil, nonRetryable(fmt.Errorf("read usage of %q for %v..%v: %w", in.CustomerID, in.From, in.To, ErrPermanent))
	}
	totals, err := a.Usage.MeterTotals(ctx, in.CustomerID, in.From, in.To)
	if err != nil {
		return nil, fmt.Errorf("read usage of %s: %w", in.CustomerID, err)
	}
	return totals, nil
}

// SetWatchLevels stores the watch levels; repeating it stores the same
// levels again.
func (a *UsageActivities) SetWatchLevels(ctx context.Context, in SetWatchLevelsInput) error {
	if in.CustomerID == "" {
		return nonRetryable(fmt.Errorf("set watch levels: customer id is empty: %w", ErrPermanent))
	}
	if err := a.Usage.SetWatchLevels(ctx, in.CustomerID, in.From, in.Levels); err != nil {
		return fmt.Errorf("set watch levels of %s: %w", in.CustomerID, err)
	}
	return nil
}
