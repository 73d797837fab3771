package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/billing/meter"
)

// SetWatchLevels replaces the customer's watch levels: for each meter slug
// in levels, the total (of event time from `from` on) at which ingestion
// reports a Crossing, once, and deletes the level. Meters not in levels are
// no longer watched; an empty map clears them all.
func (s *Store) SetWatchLevels(ctx context.Context, customerID string, from time.Time, levels map[string]decimal.Decimal) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM watch_levels WHERE customer_id = $1`, customerID); err != nil {
			return err
		}
		if len(levels) == 0 {
			return nil
		}
		var slugs, values []string
		for slug, level := range levels {
			slugs = append(slugs, slug)
			values = append(values, level.String())
		}
		_, err := tx.Exec(ctx, `INSERT INTO watch_levels (customer_id, meter, period_from, level)
			SELECT $1, m, $2, l::numeric FROM unnest($3::text[], $4::text[]) AS t(m, l)`, customerID, from, slugs, values)
		return err
	})
	if err != nil {
		return fmt.Errorf("set watch levels of %s: %w", customerID, err)
	}
	return nil
}

// WatchLevel is one stored watch level.
type WatchLevel struct {
	CustomerID string
	Meter      string
	From       time.Time
	Level      decimal.Decimal
}

// WatchLevels returns the customer's current watch levels by meter slug.
func (s *Store) WatchLevels(ctx context.Context, customerID string) (map[string]WatchLevel, error) {
	ls, err := s.watchLevels(ctx, []string{customerID})
	if err != nil {
		return nil, err
	}
	out := map[string]WatchLevel{}
	for _, l := range ls {
		out[l.Meter] = l
	}
	return out, nil
}

func (s *Store) watchLevels(ctx context.Context, customers []string) ([]WatchLevel, error) {
	rows, err := s.pool.Query(ctx, `SELECT customer_id, meter, period_from, level::text FROM watch_levels WHERE customer_id = ANY($1)`, customers)
	if err != nil {
		return nil, fmt.Errorf("watch levels: %w", err)
	}
	var out []WatchLevel
	var l WatchLevel
	var level string
	_, err = pgx.ForEachRow(rows, []any{&l.CustomerID, &l.Meter, &l.From, &level}, func() error {
		var err error
		if l.Level, err = decimal.NewFromString(level); err != nil {
			return err
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("watch levels: %w", err)
	}
	return out, nil
}

// watchHorizon is the open end of a watched period total.
var watchHorizon = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// checkWatchLevels compares the totals of the (customer, meter) pairs a
// batch touched with their watch levels and claims each level reached: the
// conditional delete lets exactly one concurrent ingest report it.
func (s *Store) checkWatchLevels(ctx context.Context, touched map[[2]string]bool) ([]Crossing, error) {
	customers := make([]string, 0, len(touched))
	seen := map[string]bool{}
	for k := range touched {
		if !seen[k[0]] {
			seen[k[0]] = true
			customers = append(customers, k[0])
		}
	}
	levels, err := s.watchLevels(ctx, customers)
	if err != nil || len(levels) == 0 {
		return nil, err
	}
	var meters *meterSet
	var out []Crossing
	for _, l := range levels {
		if !touched[[2]string{l.CustomerID, l.Meter}] {
			continue
		}
		if meters == nil {
			var version int64
			if err := s.pool.QueryRow(ctx, `SELECT version FROM meter_version`).Scan(&version); err != nil {
				return out, err
			}
			if meters, err = s.activeMeters(ctx, s.pool, version); err != nil {
				return out, err
			}
		}
		m, ok := meters.bySlug[l.Meter]
		if !ok {
			continue
		}
		tot, err := totals(ctx, s.pool, l.CustomerID, []meter.Meter{m}, l.From, watchHorizon)
		if err != nil {
			return out, err
		}
		total := tot[l.Meter]
		if total.Cmp(l.Level) < 0 {
			continue
		}
		tag, err := s.pool.Exec(ctx, `DELETE FROM watch_levels WHERE customer_id = $1 AND meter = $2 AND period_from = $3 AND level = $4::numeric`,
			l.CustomerID, l.Meter, l.From, l.Level.String())
		if err != nil {
			return out, err
		}
		if tag.RowsAffected() == 1 {
			out = append(out, Crossing{CustomerID: l.CustomerID, Meter: l.Meter, Level: l.Level, Total: total})
		}
	}
	return out, nil
}
