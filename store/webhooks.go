package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// StripeEvent is a received Stripe webhook event, as recorded for deduplication.
type StripeEvent struct {
	ID          string     `json:"id"`
	Type        string     `json:"type"`
	ObjectID    string     `json:"object_id"`
	CreatedAt   time.Time  `json:"created_at"`
	ReceivedAt  time.Time  `json:"received_at"`
	ProcessedAt *time.Time `json:"processed_at,omitempty"`
	Outcome     string     `json:"outcome,omitempty"`
}

// ClaimStripeEvent records e by its id unless it is recorded already, and
// reports whether an earlier delivery of it was processed to the end: then
// the caller acknowledges it and does nothing. An event recorded but never
// marked processed (its first delivery failed half-way) is claimed again.
func (s *Store) ClaimStripeEvent(ctx context.Context, e StripeEvent) (processed bool, err error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO stripe_events (id, type, object_id, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO NOTHING`, e.ID, e.Type, e.ObjectID, e.CreatedAt)
	if err != nil {
		return false, fmt.Errorf("record stripe event %s: %w", e.ID, err)
	}
	if tag.RowsAffected() == 1 {
		return false, nil
	}
	err = s.pool.QueryRow(ctx, `SELECT processed_at IS NOT NULL FROM stripe_events WHERE id = $1`, e.ID).Scan(&processed)
	if err != nil {
		return false, fmt.Errorf("look up stripe event %s: %w", e.ID, err)
	}
	return processed, nil
}

// FinishStripeEvent marks event id processed with a short outcome ("started
// dunning", "ignored: ...").
func (s *Store) FinishStripeEvent(ctx context.Context, id, outcome string) error {
	_, err := s.pool.Exec(ctx, `UPDATE stripe_events SET processed_at = coalesce(processed_at, now()), outcome = $2 WHERE id = $1`, id, outcome)
	if err != nil {
		return fmt.Errorf("finish stripe event %s: %w", id, err)
	}
	return nil
}

// StripeEventByID returns a recorded event, or ErrNotFound.
func (s *Store) StripeEventByID(ctx context.Context, id string) (StripeEvent, error) {
	var e StripeEvent
	err := s.pool.QueryRow(ctx, `SELECT id, type, object_id, created_at, received_at, processed_at, outcome FROM stripe_events WHERE id = $1`, id).
		Scan(&e.ID, &e.Type, &e.ObjectID, &e.CreatedAt, &e.ReceivedAt, &e.ProcessedAt, &e.Outcome)
	if errors.Is(err, pgx.ErrNoRows) {
		return StripeEvent{}, ErrNotFound
	}
	if err != nil {
		return StripeEvent{}, fmt.Errorf("stripe event %s: %w", id, err)
	}
	return e, nil
}

// CountStripeEvents returns how many events are recorded.
func (s *Store) CountStripeEvents(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM stripe_events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count stripe events: %w", err)
	}
	return n, nil
}

// CustomerByStripeID returns the customer whose Stripe customer is
// stripeCustomerID, or ErrNotFound.
func (s *Store) CustomerByStripeID(ctx context.Context, stripeCustomerID string) (Customer, error) {
	c, err := scanCustomer(s.pool.QueryRow(ctx, `SELECT `+customerColumns+` FROM customers WHERE stripe_customer_id = $1
		ORDER BY created_at LIMIT 1`, stripeCustomerID))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Customer{}, fmt.Errorf("customer of stripe customer %s: %w", stripeCustomerID, err)
	}
	return c, err
}
