package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/billcycle/billcycle/billing"
)

// Product is a catalog product as stored.
type Product struct {
	billing.Product
	CreatedAt time.Time `json:"created_at"`
}

// StoredPlan is a plan as stored, with its creation time.
type StoredPlan struct {
	billing.Plan
	CreatedAt time.Time `json:"created_at"`
}

// CreateProduct stores p after validating it with billing. Products are
// immutable: storing the same definition again returns the stored product
// with created false; another definition under the same id is ErrConflict.
// An invalid product is returned as the *billing.FieldError from Validate.
func (s *Store) CreateProduct(ctx context.Context, p billing.Product) (Product, bool, error) {
	if err := p.Validate(); err != nil {
		return Product{}, false, err
	}
	def, err := json.Marshal(p)
	if err != nil {
		return Product{}, false, fmt.Errorf("encode product %s: %w", p.ID, err)
	}
	var created time.Time
	err = s.pool.QueryRow(ctx, `INSERT INTO products (id, name, definition) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO NOTHING RETURNING created_at`, p.ID, p.Name, def).Scan(&created)
	if err == nil {
		return Product{Product: p, CreatedAt: created}, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Product{}, false, fmt.Errorf("create product %s: %w", p.ID, err)
	}
	got, err := s.Product(ctx, p.ID)
	if err != nil {
		return Product{}, false, err
	}
	if !sameJSON(got.Product, p) {
		return Product{}, false, fmt.Errorf("product %s exists with another definition: %w", p.ID, ErrConflict)
	}
	return got, false, nil
}

// Product returns the product with the given id, or ErrNotFound.
func (s *Store) Product(ctx context.Context, id string) (Product, error) {
	rows, err := s.pool.Query(ctx, `SELECT definition, created_at FROM products WHERE id = $1`, id)
	if err != nil {
		return Product{}, fmt.Errorf("product %s: %w", id, err)
	}
	ps, err := collectProducts(rows)
	if err != nil {
		return Product{}, fmt.Errorf("product %s: %w", id, err)
	}
	if len(ps) == 0 {
		return Product{}, ErrNotFound
	}
	return ps[0], nil
}

// Products lists the catalog's products by id.
func (s *Store) Products(ctx context.Context) ([]Product, error) {
	rows, err := s.pool.Query(ctx, `SELECT definition, created_at FROM products ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	ps, err := collectProducts(rows)
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	return ps, nil
}

func collectProducts(rows pgx.Rows) ([]Product, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Product, error) {
		var p Product
		var def []byte
		if err := row.Scan(&def, &p.CreatedAt); err != nil {
			return Product{}, err
		}
		if err := json.Unmarshal(def, &p.Product); err != nil {
			return Product{}, fmt.Errorf("decode definition: %w", err)
		}
		return p, nil
	})
}

// CreatePlan stores p after validating it with billing, with the same
// immutability rules as CreateProduct. The plan keeps its own copy of its
// products, so later catalog changes never reprice a subscription.
func (s *Store) CreatePlan(ctx context.Context, p billing.Plan) (StoredPlan, bool, error) {
	if err := p.Validate(); err != nil {
		return StoredPlan{}, false, err
	}
	def, err := json.Marshal(p)
	if err != nil {
		return StoredPlan{}, false, fmt.Errorf("encode plan %s: %w", p.ID, err)
	}
	var created time.Time
	err = s.pool.QueryRow(ctx, `INSERT INTO plans (id, name, currency, definition) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO NOTHING RETURNING created_at`, p.ID, p.Name, string(p.Currency), def).Scan(&created)
	if err == nil {
		return StoredPlan{Plan: p, CreatedAt: created}, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return StoredPlan{}, false, fmt.Errorf("create plan %s: %w", p.ID, err)
	}
	got, err := s.StoredPlan(ctx, p.ID)
	if err != nil {
		return StoredPlan{}, false, err
	}
	if !sameJSON(got.Plan, p) {
		return StoredPlan{}, false, fmt.Errorf("plan %s exists with another definition: %w", p.ID, ErrConflict)
	}
	return got, false, nil
}

// Plan returns the plan with the given id, or ErrNotFound.
func (s *Store) Plan(ctx context.Context, id string) (billing.Plan, error) {
	p, err := s.StoredPlan(ctx, id)
	return p.Plan, err
}

// StoredPlan returns the plan with the given id and its creation time, or
// ErrNotFound.
func (s *Store) StoredPlan(ctx context.Context, id string) (StoredPlan, error) {
	rows, err := s.pool.Query(ctx, `SELECT definition, created_at FROM plans WHERE id = $1`, id)
	if err != nil {
		return StoredPlan{}, fmt.Errorf("plan %s: %w", id, err)
	}
	ps, err := collectPlans(rows)
	if err != nil {
		return StoredPlan{}, fmt.Errorf("plan %s: %w", id, err)
	}
	if len(ps) == 0 {
		return StoredPlan{}, ErrNotFound
	}
	return ps[0], nil
}

// Plans lists the catalog's plans by id.
func (s *Store) Plans(ctx context.Context) ([]StoredPlan, error) {
	rows, err := s.pool.Query(ctx, `SELECT definition, created_at FROM plans ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list plans: %w", err)
	}
	ps, err := collectPlans(rows)
	if err != nil {
		return nil, fmt.Errorf("list plans: %w", err)
	}
	return ps, nil
}

func collectPlans(rows pgx.Rows) ([]StoredPlan, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (StoredPlan, error) {
		var p StoredPlan
		var def []byte
		if err := row.Scan(&def, &p.CreatedAt); err != nil {
			return StoredPlan{}, err
		}
		if err := json.Unmarshal(def, &p.Plan); err != nil {
			return StoredPlan{}, fmt.Errorf("decode definition: %w", err)
		}
		return p, nil
	})
}

// sameJSON reports whether a and b encode to the same JSON, so decimals
// written differently ("1.50" and "1.5") still compare as written.
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}
