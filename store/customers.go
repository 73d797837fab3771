package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Customer is a billed customer as stored.
type Customer struct {
	ID               string            `json:"id"`
	Email            string            `json:"email"`
	Name             string            `json:"name"`
	Plan             string            `json:"plan"`
	Metadata         map[string]string `json:"metadata"`
	StripeCustomerID string            `json:"stripe_customer_id,omitempty"`
	Access           string            `json:"access"`
	AccessReason     string            `json:"access_reason,omitempty"`
	CreatedAt        time.Time         `json:"created_at"`
}

const customerColumns = `id, email, name, plan, metadata, coalesce(stripe_customer_id, ''), access, access_reason, created_at`

func scanCustomer(row pgx.Row) (Customer, error) {
	var c Customer
	var meta []byte
	err := row.Scan(&c.ID, &c.Email, &c.Name, &c.Plan, &meta, &c.StripeCustomerID, &c.Access, &c.AccessReason, &c.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Customer{}, ErrNotFound
	}
	if err != nil {
		return Customer{}, err
	}
	if err := json.Unmarshal(meta, &c.Metadata); err != nil {
		return Customer{}, fmt.Errorf("customer %s metadata: %w", c.ID, err)
	}
	return c, nil
}

// CreateCustomer inserts c unless a customer with its id exists. It returns
// the stored customer and whether this call created it, so that a repeated
// signup is harmless.
func (s *Store) CreateCustomer(ctx context.Context, c Customer) (Customer, bool, error) {
	if c.Metadata == nil {
		c.Metadata = map[string]string{}
	}
	meta, err := json.Marshal(c.Metadata)
	if err != nil {
		return Customer{}, false, err
	}
	got, err := scanCustomer(s.pool.QueryRow(ctx, `
		INSERT INTO customers (id, email, name, plan, metadata) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO NOTHING
		RETURNING `+customerColumns, c.ID, c.Email, c.Name, c.Plan, meta))
	if err == nil {
		return got, true, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Customer{}, false, fmt.Errorf("create customer %s: %w", c.ID, err)
	}
	got, err = s.Customer(ctx, c.ID)
	return got, false, err
}

// Customer returns the customer with the given id, or ErrNotFound.
func (s *Store) Customer(ctx context.Context, id string) (Customer, error) {
	c, err := scanCustomer(s.pool.QueryRow(ctx, `SELECT `+customerColumns+` FROM customers WHERE id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Customer{}, fmt.Errorf("customer %s: %w", id, err)
	}
	return c, err
}

// SetStripeCustomerID records the Stripe customer that mirrors customer id.
func (s *Store) SetStripeCustomerID(ctx context.Context, id, stripeID string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE customers SET stripe_customer_id = $2, updated_at = now() WHERE id = $1`, id, stripeID)
	if err != nil {
		return fmt.Errorf("set stripe customer of %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// SetAccess grants or revokes a customer's API access and records why. It
// reports whether the state changed, so callers send one notice per change.
func (s *Store) SetAccess(ctx context.Context, id string, granted bool, reason string) (changed bool, err error) {
	state := "revoked"
	if granted {
		state = "granted"
	}
	tag, err := s.pool.Exec(ctx, `UPDATE customers SET access = $2, access_reason = $3, access_changed_at = now(), updated_at = now()
		WHERE id = $1 AND access <> $2`, id, state, reason)
	if err != nil {
		return false, fmt.Errorf("set access of %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.Customer(ctx, id); err != nil {
			return false, err
		}
		return false, nil
	}
	return true, nil
}
