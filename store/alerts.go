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

// ErrAlertLimit is returned by CreateAlert when the meter already has
// billing.MaxAlertsPerMeter live alerts for the same customer (or for all
// customers).
var ErrAlertLimit = errors.New("alert limit reached")

const alertColumns = `id, meter, coalesce(customer_id, ''), customer_filter, threshold::text, direction,
	(extract(epoch FROM "window") * 1000000)::bigint, (extract(epoch FROM cooldown) * 1000000)::bigint,
	actions, created_at, archived_at IS NOT NULL`

func scanAlert(row pgx.Row) (billing.Alert, error) {
	var a billing.Alert
	var filter []byte
	var threshold string
	var windowUS, cooldownUS int64
	var actions []string
	err := row.Scan(&a.ID, &a.Meter, &a.CustomerID, &filter, &threshold, &a.Direction, &windowUS, &cooldownUS,
		&actions, &a.CreatedAt, &a.Archived)
	if errors.Is(err, pgx.ErrNoRows) {
		return billing.Alert{}, ErrNotFound
	}
	if err != nil {
		return billing.Alert{}, err
	}
	if err := json.Unmarshal(filter, &a.CustomerFilter); err != nil {
		return billing.Alert{}, fmt.Errorf("alert %s filter: %w", a.ID, err)
	}
	if len(a.CustomerFilter) == 0 {
		a.CustomerFilter = nil
	}
	if a.Threshold, err = decimal.NewFromString(threshold); err != nil {
		return billing.Alert{}, fmt.Errorf("alert %s threshold: %w", a.ID, err)
	}
	a.Window = billing.Duration(time.Duration(windowUS) * time.Microsecond)
	a.Cooldown = billing.Duration(time.Duration(cooldownUS) * time.Microsecond)
	for _, act := range actions {
		a.Actions = append(a.Actions, billing.AlertAction(act))
	}
	return a, nil
}

// CreateAlert stores a new alert (a.ID must be set and unused) and returns it
// with its creation time. It returns ErrAlertLimit when a.Meter already has
// billing.MaxAlertsPerMeter live alerts for a.CustomerID (or, for an
// all-customers alert, for all customers), ErrConflict when the id is taken,
// and ErrNotFound when a.CustomerID names no customer.
func (s *Store) CreateAlert(ctx context.Context, a billing.Alert) (billing.Alert, error) {
	if a.CustomerFilter == nil {
		a.CustomerFilter = map[string]string{}
	}
	filter, err := json.Marshal(a.CustomerFilter)
	if err != nil {
		return billing.Alert{}, err
	}
	actions := make([]string, len(a.Actions))
	for i, act := range a.Actions {
		actions[i] = string(act)
	}
	var customer *string
	if a.CustomerID != "" {
		customer = &a.CustomerID
	}
	var out billing.Alert
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Serialise creations on one (meter, customer) so the limit holds
		// under concurrent requests.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('alerts/' || $1 || '/' || $2, 0))`,
			a.Meter, a.CustomerID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM alerts
			WHERE meter = $1 AND customer_id IS NOT DISTINCT FROM $2 AND archived_at IS NULL`, a.Meter, customer).Scan(&n); err != nil {
			return err
		}
		if n >= billing.MaxAlertsPerMeter {
			return ErrAlertLimit
		}
		out, err = scanAlert(tx.QueryRow(ctx, `
			INSERT INTO alerts (id, meter, customer_id, customer_filter, threshold, direction, "window", cooldown, actions)
			VALUES ($1, $2, $3, $4, $5::numeric, $6, $7 * interval '1 microsecond', $8 * interval '1 microsecond', $9)
			RETURNING `+alertColumns,
			a.ID, a.Meter, customer, filter, a.Threshold.String(), string(a.Direction),
			time.Duration(a.Window).Microseconds(), time.Duration(a.Cooldown).Microseconds(), actions))
		return err
	})
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, ErrAlertLimit):
		return billing.Alert{}, err
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return billing.Alert{}, fmt.Errorf("create alert %s: id taken: %w", a.ID, ErrConflict)
	case errors.As(err, &pgErr) && pgErr.Code == "23503":
		return billing.Alert{}, fmt.Errorf("create alert %s: customer %s: %w", a.ID, a.CustomerID, ErrNotFound)
	case err != nil:
		return billing.Alert{}, fmt.Errorf("create alert %s: %w", a.ID, err)
	}
	return out, nil
}

// Alert returns the alert with the given id (archived or not), or ErrNotFound.
func (s *Store) Alert(ctx context.Context, id string) (billing.Alert, error) {
	a, err := scanAlert(s.pool.QueryRow(ctx, `SELECT `+alertColumns+` FROM alerts WHERE id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return billing.Alert{}, fmt.Errorf("alert %s: %w", id, err)
	}
	return a, err
}

// ArchiveAlert archives the alert with the given id and returns it; archiving
// an archived alert changes nothing. An unknown id is ErrNotFound.
func (s *Store) ArchiveAlert(ctx context.Context, id string) (billing.Alert, error) {
	a, err := scanAlert(s.pool.QueryRow(ctx, `UPDATE alerts SET archived_at = coalesce(archived_at, now())
		WHERE id = $1 RETURNING `+alertColumns, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return billing.Alert{}, fmt.Errorf("archive alert %s: %w", id, err)
	}
	return a, err
}

// AlertFilter selects alerts; empty fields match everything.
type AlertFilter struct {
	// CustomerID selects the alerts created for that one customer (not the
	// all-customers alerts that may apply to it; see AlertsFor).
	CustomerID string
	Meter      string
	// IncludeArchived lists archived alerts too.
	IncludeArchived bool
}

// Alerts lists the alerts matching f, oldest first.
func (s *Store) Alerts(ctx context.Context, f AlertFilter) ([]billing.Alert, error) {
	return s.queryAlerts(ctx, `SELECT `+alertColumns+` FROM alerts
		WHERE ($1 = '' OR customer_id = $1) AND ($2 = '' OR meter = $2) AND ($3 OR archived_at IS NULL)
		ORDER BY created_at, id`, f.CustomerID, f.Meter, f.IncludeArchived)
}

// AlertsFor returns the live alerts that apply to a customer: its own alerts
// plus the all-customers alerts whose CustomerFilter matches metadata (a
// filter value "v" requires metadata[key] == v; "!v" requires it to differ,
// a missing key included), oldest first.
func (s *Store) AlertsFor(ctx context.Context, customerID string, metadata map[string]string) ([]billing.Alert, error) {
	all, err := s.queryAlerts(ctx, `SELECT `+alertColumns+` FROM alerts
		WHERE (customer_id = $1 OR customer_id IS NULL) AND archived_at IS NULL
		ORDER BY created_at, id`, customerID)
	if err != nil {
		return nil, fmt.Errorf("alerts for %s: %w", customerID, err)
	}
	out := all[:0]
	for _, a := range all {
		if a.CustomerID != "" || billing.FilterMatches(a.CustomerFilter, metadata) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *Store) queryAlerts(ctx context.Context, sql string, args ...any) ([]billing.Alert, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	defer rows.Close()
	out := []billing.Alert{}
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("list alerts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return out, nil
}

// MeterKnown reports whether a live meter with the given slug exists. checked
// is false when the schema has no meters table yet, in which case known is
// false and callers can only check the slug's form.
func (s *Store) MeterKnown(ctx context.Context, slug string) (known, checked bool, err error) {
	rows, err := s.pool.Query(ctx, `SELECT column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'meters'`)
	if err != nil {
		return false, false, fmt.Errorf("look up meter %s: %w", slug, err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, false, fmt.Errorf("look up meter %s: %w", slug, err)
	}
	have := map[string]bool{}
	for _, c := range cols {
		have[c] = true
	}
	key := "slug"
	if !have[key] {
		key = "id"
	}
	if !have[key] {
		return false, false, nil
	}
	q := `SELECT EXISTS (SELECT 1 FROM meters WHERE ` + key + `::text = $1`
	if have["archived_at"] {
		q += ` AND archived_at IS NULL`
	}
	q += `)`
	if err := s.pool.QueryRow(ctx, q, slug).Scan(&known); err != nil {
		return false, false, fmt.Errorf("look up meter %s: %w", slug, err)
	}
	return known, true, nil
}
