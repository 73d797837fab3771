package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// CompactRollups merges the rollup and unique-key deltas written by ingest
// into one row per customer, meter and hour, and returns how many delta rows
// it merged. Totals are the same before and after; compaction only keeps
// reads short. Each delta is deleted and merged in the same statement, so
// concurrent compactions (several servers) merge every delta exactly once.
// Ingestion calls it in the background about once a second.
func (s *Store) CompactRollups(ctx context.Context) (int64, error) {
	var merged int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// One compactor at a time across servers: a second one would only
		// wait on the first one's rows.
		var got bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, compactLockID).Scan(&got); err != nil || !got {
			return err
		}
		tag, err := tx.Exec(ctx, `
			WITH d AS (DELETE FROM rollup_deltas RETURNING *),
			g AS (
				SELECT customer_id, meter, bucket, sum(count)::bigint AS count, sum(sum) AS sum, min(min) AS min, max(max) AS max,
					(array_agg(last_value ORDER BY last_at DESC, last_id DESC, last_value DESC) FILTER (WHERE last_at IS NOT NULL))[1] AS last_value,
					max(last_at) AS last_at,
					(array_agg(last_id ORDER BY last_at DESC, last_id DESC, last_value DESC) FILTER (WHERE last_at IS NOT NULL))[1] AS last_id
				FROM d GROUP BY 1, 2, 3 ORDER BY 1, 2, 3)
			INSERT INTO rollups AS r (customer_id, meter, bucket, count, sum, min, max, last_value, last_at, last_id)
			SELECT * FROM g
			ON CONFLICT (customer_id, meter, bucket) DO UPDATE SET
				count = r.count + excluded.count,
				sum = r.sum + excluded.sum,
				min = least(r.min, excluded.min),
				max = greatest(r.max, excluded.max),
				last_value = CASE WHEN r.last_at IS NULL OR (excluded.last_at, excluded.last_id, excluded.last_value) > (r.last_at, r.last_id, r.last_value)
					THEN coalesce(excluded.last_value, r.last_value) ELSE r.last_value END,
				last_id = CASE WHEN r.last_at IS NULL OR (excluded.last_at, excluded.last_id, excluded.last_value) > (r.last_at, r.last_id, r.last_value)
					THEN coalesce(excluded.last_id, r.last_id) ELSE r.last_id END,
				last_at = CASE WHEN r.last_at IS NULL OR (excluded.last_at, excluded.last_id, excluded.last_value) > (r.last_at, r.last_id, r.last_value)
					THEN coalesce(excluded.last_at, r.last_at) ELSE r.last_at END`)
		if err != nil {
			return fmt.Errorf("compact rollups: %w", err)
		}
		merged = tag.RowsAffected()
		_, err = tx.Exec(ctx, `
			WITH d AS (DELETE FROM unique_key_deltas RETURNING *)
			INSERT INTO rollup_unique_keys SELECT DISTINCT * FROM d ORDER BY 1, 2, 3, 4 ON CONFLICT DO NOTHING`)
		if err != nil {
			return fmt.Errorf("compact unique keys: %w", err)
		}
		return nil
	})
	return merged, err
}

// compactLockID keys the advisory lock of CompactRollups.
const compactLockID = 0x636f6d70 // "comp"

// compactEvery is how often ingestion starts a background compaction.
const compactEvery = time.Second

// compactor runs CompactRollups in the background, one at a time per Store.
type compactor struct {
	running atomic.Bool
	last    atomic.Int64 // unix nanoseconds of the last start
}

// maybeCompact starts a background compaction when none runs and the last
// one started more than compactEvery ago. Failures are left to the next
// run: deltas are read by every total, so they cost only read time.
func (s *Store) maybeCompact() {
	c := &s.cache().compactor
	now := time.Now().UnixNano()
	if now-c.last.Load() < int64(compactEvery) || !c.running.CompareAndSwap(false, true) {
		return
	}
	c.last.Store(now)
	go func() {
		defer c.running.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = s.CompactRollups(ctx)
	}()
}
