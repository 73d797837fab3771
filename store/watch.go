package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
)

// SetWatchLevels replaces the customer's watch levels: for each meter slug
// in levels, the total (of event time from `from` on) at which compaction
// reports a Crossing to the HandleCrossings handler, once, and deletes the
// level. A level is checked when ingested usage of its customer and meter is
// merged, within about a second of the ingest. Meters not in levels are no
// longer watched; an empty map clears them all.
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
	out, err := scanWatchLevels(rows)
	if err != nil {
		return nil, fmt.Errorf("watch levels: %w", err)
	}
	return out, nil
}

// scanWatchLevels reads rows of (customer_id, meter, period_from, level::text).
func scanWatchLevels(rows pgx.Rows) ([]WatchLevel, error) {
	var out []WatchLevel
	var l WatchLevel
	var level string
	_, err := pgx.ForEachRow(rows, []any{&l.CustomerID, &l.Meter, &l.From, &level}, func() error {
		var err error
		if l.Level, err = decimal.NewFromString(level); err != nil {
			return err
		}
		out = append(out, l)
		return nil
	})
	return out, err
}

// watchHorizon is the open end of a watched period total.
var watchHorizon = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
