package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/billcycle/billcycle/billing"
)

// Stripe invoice statuses the dunning code tests for.
const (
	InvoiceOpen          = "open"
	InvoicePaid          = "paid"
	InvoiceVoid          = "void"
	InvoiceUncollectible = "uncollectible"
)

// InvoiceState is the latest state of a Stripe invoice as its webhooks
// reported it.
type InvoiceState struct {
	StripeInvoiceID string `json:"stripe_invoice_id"`
	// InvoiceID is billcycle's invoice id, from the billcycle_invoice_id metadata.
	InvoiceID       string     `json:"invoice_id,omitempty"`
	CustomerID      string     `json:"customer_id,omitempty"`
	Status          string     `json:"status"`
	ChargeID        string     `json:"charge_id,omitempty"`
	PaymentIntentID string     `json:"payment_intent_id,omitempty"`
	AmountRemaining int64      `json:"amount_remaining"`
	Currency        string     `json:"currency,omitempty"`
	DueAt           *time.Time `json:"due_at,omitempty"`
	// EventCreated is the creation time of the newest event applied.
	EventCreated time.Time `json:"event_created"`
}

const invoiceStateColumns = `stripe_invoice_id, invoice_id, customer_id, status, charge_id, payment_intent_id,
	amount_remaining, currency, due_at, event_created`

func scanInvoiceState(row pgx.Row) (InvoiceState, error) {
	var st InvoiceState
	err := row.Scan(&st.StripeInvoiceID, &st.InvoiceID, &st.CustomerID, &st.Status, &st.ChargeID, &st.PaymentIntentID,
		&st.AmountRemaining, &st.Currency, &st.DueAt, &st.EventCreated)
	if errors.Is(err, pgx.ErrNoRows) {
		return InvoiceState{}, ErrNotFound
	}
	return st, err
}

// ApplyInvoiceEvent merges the invoice snapshot of one webhook event into
// the stored state and returns the state after it. Events arrive out of
// order, so the status of a newer event (by EventCreated) replaces an older
// one, a terminal status (paid, void) is never replaced, and ids are kept
// once known. The returned Status is what the caller acts on: a
// payment-failed event for an invoice already known paid yields "paid".
func (s *Store) ApplyInvoiceEvent(ctx context.Context, st InvoiceState) (InvoiceState, error) {
	got, err := scanInvoiceState(s.pool.QueryRow(ctx, `
		INSERT INTO stripe_invoice_states AS o (`+invoiceStateColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (stripe_invoice_id) DO UPDATE SET
			status = CASE
				WHEN o.status IN ('paid', 'void') THEN o.status
				WHEN EXCLUDED.status IN ('paid', 'void') THEN EXCLUDED.status
				WHEN EXCLUDED.event_created >= o.event_created THEN EXCLUDED.status
				ELSE o.status END,
			amount_remaining = CASE WHEN EXCLUDED.event_created >= o.event_created THEN EXCLUDED.amount_remaining ELSE o.amount_remaining END,
			invoice_id = CASE WHEN o.invoice_id = '' THEN EXCLUDED.invoice_id ELSE o.invoice_id END,
			customer_id = CASE WHEN o.customer_id = '' THEN EXCLUDED.customer_id ELSE o.customer_id END,
			charge_id = CASE WHEN EXCLUDED.charge_id <> '' AND (o.charge_id = '' OR EXCLUDED.event_created >= o.event_created)
				THEN EXCLUDED.charge_id ELSE o.charge_id END,
			payment_intent_id = CASE WHEN o.payment_intent_id = '' THEN EXCLUDED.payment_intent_id ELSE o.payment_intent_id END,
			currency = CASE WHEN o.currency = '' THEN EXCLUDED.currency ELSE o.currency END,
			due_at = coalesce(EXCLUDED.due_at, o.due_at),
			event_created = greatest(o.event_created, EXCLUDED.event_created),
			updated_at = now()
		RETURNING `+invoiceStateColumns,
		st.StripeInvoiceID, st.InvoiceID, st.CustomerID, st.Status, st.ChargeID, st.PaymentIntentID,
		st.AmountRemaining, st.Currency, st.DueAt, st.EventCreated))
	if err != nil {
		return InvoiceState{}, fmt.Errorf("apply event to invoice %s: %w", st.StripeInvoiceID, err)
	}
	// Our ledger shows the merged state, so GET /v1/invoices/{id} and the
	// overdue cohort agree with Stripe however the events were ordered.
	if got.InvoiceID != "" {
		if _, err := s.pool.Exec(ctx, `UPDATE invoices SET status = $2, updated_at = now()
			WHERE id = $1 AND status IS DISTINCT FROM $2 AND (stripe_invoice_id IS NULL OR stripe_invoice_id = $3)`,
			got.InvoiceID, got.Status, got.StripeInvoiceID); err != nil {
			return InvoiceState{}, fmt.Errorf("apply event to invoice %s: %w", got.InvoiceID, err)
		}
	}
	return got, nil
}

// InvoiceStateByStripeID returns the stored state of a Stripe invoice, or ErrNotFound.
func (s *Store) InvoiceStateByStripeID(ctx context.Context, stripeInvoiceID string) (InvoiceState, error) {
	st, err := scanInvoiceState(s.pool.QueryRow(ctx, `SELECT `+invoiceStateColumns+` FROM stripe_invoice_states
		WHERE stripe_invoice_id = $1`, stripeInvoiceID))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return InvoiceState{}, fmt.Errorf("invoice state %s: %w", stripeInvoiceID, err)
	}
	return st, err
}

// InvoiceStateForPayment returns the invoice a charge or payment intent paid
// (or failed to pay), for mapping disputes to invoices, or ErrNotFound.
func (s *Store) InvoiceStateForPayment(ctx context.Context, chargeID, paymentIntentID string) (InvoiceState, error) {
	st, err := scanInvoiceState(s.pool.QueryRow(ctx, `SELECT `+invoiceStateColumns+` FROM stripe_invoice_states
		WHERE (charge_id = $1 AND $1 <> '') OR (payment_intent_id = $2 AND $2 <> '')
		ORDER BY event_created DESC LIMIT 1`, chargeID, paymentIntentID))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return InvoiceState{}, fmt.Errorf("invoice of charge %s: %w", chargeID, err)
	}
	return st, err
}

// InvoiceStatus returns the latest Stripe status recorded for an invoice,
// found by billcycle id or by Stripe id, or "" when no webhook reported it.
func (s *Store) InvoiceStatus(ctx context.Context, invoiceID, stripeInvoiceID string) (string, error) {
	var status string
	err := s.pool.QueryRow(ctx, `SELECT status FROM stripe_invoice_states
		WHERE (stripe_invoice_id = $2 AND $2 <> '') OR (invoice_id = $1 AND $1 <> '')
		ORDER BY (status IN ('paid', 'void')) DESC, event_created DESC LIMIT 1`, invoiceID, stripeInvoiceID).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("invoice status of %s: %w", invoiceID, err)
	}
	return status, nil
}

// PutDunningPolicy stores p (which the caller validated) as planID's dunning
// policy, replacing any earlier one, and reports whether one existed.
func (s *Store) PutDunningPolicy(ctx context.Context, planID string, p billing.Policy) (replaced bool, err error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return false, err
	}
	err = s.pool.QueryRow(ctx, `INSERT INTO dunning_policies (plan_id, policy) VALUES ($1, $2)
		ON CONFLICT (plan_id) DO UPDATE SET policy = EXCLUDED.policy, updated_at = now()
		RETURNING xmax <> 0`, planID, raw).Scan(&replaced)
	if err != nil {
		return false, fmt.Errorf("put dunning policy of plan %s: %w", planID, err)
	}
	return replaced, nil
}

// DunningPolicy returns the policy stored for planID and whether one is.
func (s *Store) DunningPolicy(ctx context.Context, planID string) (billing.Policy, bool, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT policy FROM dunning_policies WHERE plan_id = $1`, planID).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return billing.Policy{}, false, nil
	}
	if err != nil {
		return billing.Policy{}, false, fmt.Errorf("dunning policy of plan %s: %w", planID, err)
	}
	var p billing.Policy
	if err := json.Unmarshal(raw, &p); err != nil {
		return billing.Policy{}, false, fmt.Errorf("dunning policy of plan %s: %w", planID, err)
	}
	return p, true, nil
}

// OverdueCustomer is one row of the overdue cohort.
type OverdueCustomer struct {
	CustomerID string `json:"customer_id"`
	Email      string `json:"email"`
	Name       string `json:"name"`
	// Outstanding counts the customer's open invoices due before the cut-off.
	Outstanding int `json:"outstanding"`
	// Amounts sums their totals per currency, in minor units.
	Amounts    map[string]int64 `json:"amounts"`
	OldestDue  time.Time        `json:"oldest_due"`
	InvoiceIDs []string         `json:"invoice_ids"`
}

// OverdueCohort lists the customers with at least minOutstanding open
// invoices due before dueBefore, most invoices first, at most limit rows. An
// invoice counts as open by the invoices table, unless a Stripe webhook
// reported a later status (stripe_invoice_states), which wins.
func (s *Store) OverdueCohort(ctx context.Context, minOutstanding int, dueBefore time.Time, limit int) ([]OverdueCustomer, error) {
	rows, err := s.pool.Query(ctx, `
		WITH overdue AS (
			SELECT i.id, i.customer_id, i.currency, i.total, i.due_at
			FROM invoices i
			LEFT JOIN stripe_invoice_states st ON st.stripe_invoice_id = i.stripe_invoice_id
			WHERE coalesce(st.status, i.status) = 'open' AND i.due_at < $1
		), counted AS (
			SELECT customer_id, count(*) AS n, min(due_at) AS oldest, array_agg(id ORDER BY due_at, id) AS ids
			FROM overdue GROUP BY customer_id HAVING count(*) >= $2
		)
		SELECT c.customer_id, cu.email, cu.name, c.n, c.oldest, c.ids,
			(SELECT jsonb_object_agg(currency, amount) FROM
				(SELECT lower(o.currency) AS currency, sum(o.total) AS amount FROM overdue o
				 WHERE o.customer_id = c.customer_id GROUP BY lower(o.currency)) a)
		FROM counted c JOIN customers cu ON cu.id = c.customer_id
		ORDER BY c.n DESC, c.oldest, c.customer_id
		LIMIT $3`, dueBefore, minOutstanding, limit)
	if err != nil {
		return nil, fmt.Errorf("overdue cohort: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (OverdueCustomer, error) {
		var oc OverdueCustomer
		var amounts []byte
		if err := row.Scan(&oc.CustomerID, &oc.Email, &oc.Name, &oc.Outstanding, &oc.OldestDue, &oc.InvoiceIDs, &amounts); err != nil {
			return oc, err
		}
		return oc, json.Unmarshal(amounts, &oc.Amounts)
	})
	if err != nil {
		return nil, fmt.Errorf("overdue cohort: %w", err)
	}
	return out, nil
}
