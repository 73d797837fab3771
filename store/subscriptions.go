package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/billing"
)

// Collection methods of a subscription: how Stripe collects its invoices.
const (
	// ChargeAutomatically charges the customer's default payment method.
	ChargeAutomatically = "charge_automatically"
	// SendInvoice emails the invoice; the customer pays within DaysUntilDue.
	SendInvoice = "send_invoice"
)

// SubscriptionRecord is a customer's subscription as stored: the rating
// terms, the billing thresholds and how invoices are collected.
type SubscriptionRecord struct {
	billing.Subscription
	Thresholds billing.Thresholds `json:"thresholds"`
	// CollectionMethod is ChargeAutomatically or SendInvoice.
	CollectionMethod string `json:"collection_method"`
	// DaysUntilDue is how long a SendInvoice customer has to pay.
	DaysUntilDue int       `json:"days_until_due,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// PutSubscription creates or replaces the subscription of rec.CustomerID and
// returns the stored record and whether it was created. The plan and the
// customer must exist (ErrNotFound otherwise); the record is validated with
// billing and its currency must be the plan's.
func (s *Store) PutSubscription(ctx context.Context, rec SubscriptionRecord) (SubscriptionRecord, bool, error) {
	if rec.CollectionMethod == "" {
		rec.CollectionMethod = ChargeAutomatically
	}
	if err := rec.Subscription.Validate(); err != nil {
		return SubscriptionRecord{}, false, err
	}
	if rec.Discounts == nil {
		rec.Discounts = []billing.Discount{}
	}
	discounts, err := json.Marshal(rec.Discounts)
	if err != nil {
		return SubscriptionRecord{}, false, err
	}
	thresholds, err := json.Marshal(rec.Thresholds)
	if err != nil {
		return SubscriptionRecord{}, false, err
	}
	var created bool
	err = s.pool.QueryRow(ctx, `
		INSERT INTO subscriptions (customer_id, plan_id, anchor, trial_end, status, discounts, credit_balance,
			tax_rate, currency, collection_method, days_until_due, thresholds)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (customer_id) DO UPDATE SET plan_id = EXCLUDED.plan_id, anchor = EXCLUDED.anchor,
			trial_end = EXCLUDED.trial_end, status = EXCLUDED.status, discounts = EXCLUDED.discounts,
			credit_balance = EXCLUDED.credit_balance, tax_rate = EXCLUDED.tax_rate, currency = EXCLUDED.currency,
			collection_method = EXCLUDED.collection_method, days_until_due = EXCLUDED.days_until_due,
			thresholds = EXCLUDED.thresholds, updated_at = now()
		RETURNING xmax = 0`,
		rec.CustomerID, rec.PlanID, rec.Anchor.UTC(), rec.TrialEnd, string(rec.Status), discounts, rec.CreditBalance,
		rec.TaxRate, string(rec.Currency), rec.CollectionMethod, rec.DaysUntilDue, thresholds).Scan(&created)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign_key_violation
		return SubscriptionRecord{}, false, fmt.Errorf("subscription of %s: %s: %w", rec.CustomerID, pgErr.Detail, ErrNotFound)
	}
	if err != nil {
		return SubscriptionRecord{}, false, fmt.Errorf("put subscription of %s: %w", rec.CustomerID, err)
	}
	got, err := s.SubscriptionRecord(ctx, rec.CustomerID)
	return got, created, err
}

const subscriptionColumns = `customer_id, plan_id, anchor, trial_end, status, discounts, credit_balance, tax_rate,
	currency, collection_method, days_until_due, thresholds, created_at, updated_at`

// SubscriptionRecord returns the stored subscription of a customer, or
// ErrNotFound.
func (s *Store) SubscriptionRecord(ctx context.Context, customerID string) (SubscriptionRecord, error) {
	var r SubscriptionRecord
	var discounts, thresholds []byte
	var status, currency string
	var tax decimal.Decimal
	err := s.pool.QueryRow(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE customer_id = $1`, customerID).Scan(
		&r.CustomerID, &r.PlanID, &r.Anchor, &r.TrialEnd, &status, &discounts, &r.CreditBalance, &tax,
		&currency, &r.CollectionMethod, &r.DaysUntilDue, &thresholds, &r.CreatedAt, &r.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return SubscriptionRecord{}, ErrNotFound
	}
	if err != nil {
		return SubscriptionRecord{}, fmt.Errorf("subscription of %s: %w", customerID, err)
	}
	r.Status, r.Currency, r.TaxRate = billing.Status(status), billing.Currency(currency), tax
	r.Anchor = r.Anchor.UTC()
	if r.TrialEnd != nil {
		t := r.TrialEnd.UTC()
		r.TrialEnd = &t
	}
	if err := json.Unmarshal(discounts, &r.Discounts); err != nil {
		return SubscriptionRecord{}, fmt.Errorf("subscription of %s: discounts: %w", customerID, err)
	}
	if len(r.Discounts) == 0 {
		r.Discounts = nil
	}
	if err := json.Unmarshal(thresholds, &r.Thresholds); err != nil {
		return SubscriptionRecord{}, fmt.Errorf("subscription of %s: thresholds: %w", customerID, err)
	}
	return r, nil
}

// Subscription returns a customer's rating terms and billing thresholds, or
// ErrNotFound when the customer has no subscription. It is the billing
// cycle's view: CreditBalance is the balance as it stood when the current
// period began (credit that invoices of periods not yet ended applied is
// added back), so every rating within one period uses the same terms, as
// billing.Increment requires, however often the cycle reloads them.
func (s *Store) Subscription(ctx context.Context, customerID string) (billing.Subscription, billing.Thresholds, error) {
	r, err := s.SubscriptionRecord(ctx, customerID)
	if err != nil {
		return r.Subscription, r.Thresholds, err
	}
	var applied int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(credit_applied), 0)::bigint FROM invoices
		WHERE customer_id = $1 AND period_end > now()`, customerID).Scan(&applied); err != nil {
		return billing.Subscription{}, billing.Thresholds{}, fmt.Errorf("credit applied this period for %s: %w", customerID, err)
	}
	r.CreditBalance += applied
	return r.Subscription, r.Thresholds, nil
}

// SaveSubscription creates or replaces a customer's rating terms and
// thresholds, keeping the collection terms and credit balance already stored (a new
// subscription collects automatically). The billing-cycle workflow uses it
// when it changes a plan or the thresholds.
func (s *Store) SaveSubscription(ctx context.Context, sub billing.Subscription, th billing.Thresholds) error {
	rec := SubscriptionRecord{Subscription: sub, Thresholds: th}
	old, err := s.SubscriptionRecord(ctx, sub.CustomerID)
	switch {
	case err == nil:
		// The credit balance is the ledger's, not the cycle's copy of it.
		rec.CollectionMethod, rec.DaysUntilDue, rec.CreditBalance = old.CollectionMethod, old.DaysUntilDue, old.CreditBalance
	case !errors.Is(err, ErrNotFound):
		return err
	}
	_, _, err = s.PutSubscription(ctx, rec)
	return err
}
