package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/billing/meter"
)

// IngestResult says what IngestEvents did with a batch.
type IngestResult struct {
	// Accepted counts the events stored by this call.
	Accepted int
	// Duplicates counts the events whose id was stored before (by this or
	// an earlier batch) and were skipped.
	Duplicates int
}

// Crossing is a watch level reached by a customer's usage.
type Crossing struct {
	CustomerID string
	Meter      string
	Level      decimal.Decimal
	Total      decimal.Decimal
}

// IngestEvents stores a batch of valid events (meter.Validate) exactly once
// each, keyed by event id across all customers and times, and folds the new
// ones into the rollups of every active meter they match, in one
// transaction. Events whose id is already stored are counted as duplicates
// and change nothing. Timestamps are stored, and rounded in events, to the
// microsecond. MeterTotals and Usage include the batch as soon as
// IngestEvents returns.
//
// Concurrent batches are safe and do not wait on each other: ids are claimed
// in byte order (two batches racing for one id wait for each other instead
// of deadlocking; a deadlock or serialization failure is retried anyway), and
// rollups are appended as a few pending rows that the Store's background
// compactor merges (CompactRollups) a fraction of a second later; the
// compactor also compares the merged customers' totals with their watch
// levels (see SetWatchLevels and HandleCrossings).
func (s *Store) IngestEvents(ctx context.Context, events []meter.Event) (IngestResult, error) {
	var res IngestResult
	if len(events) == 0 {
		return res, nil
	}
	// Keep the first event of each id: a batch may repeat one.
	uniq := make([]*meter.Event, 0, len(events))
	seen := make(map[string]struct{}, len(events))
	for i := range events {
		if _, dup := seen[events[i].ID]; dup {
			res.Duplicates++
			continue
		}
		seen[events[i].ID] = struct{}{}
		// Postgres keeps microseconds; round here so that Go's choice of
		// the last value agrees with the stored timestamps.
		events[i].Timestamp = events[i].Timestamp.Round(time.Microsecond)
		uniq = append(uniq, &events[i])
	}
	slices.SortFunc(uniq, func(a, b *meter.Event) int { return strings.Compare(a.ID, b.ID) })
	if err := s.ensurePartitions(ctx, uniq); err != nil {
		return IngestResult{}, err
	}
	for attempt := 0; ; attempt++ {
		accepted, pending, err := s.ingestOnce(ctx, uniq)
		if err == nil {
			res.Accepted = accepted
			res.Duplicates += len(uniq) - accepted
			if pending {
				s.ingest.kickCompactor(s)
			}
			return res, nil
		}
		if attempt >= 4 || !retryable(err) {
			return IngestResult{}, fmt.Errorf("ingest %d events: %w", len(events), err)
		}
	}
}

// retryable reports whether err is a transient conflict between
// transactions: a deadlock or a serialization failure.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// ingestOnce runs the ingest transaction for uniq (distinct ids in byte
// order) and returns how many were new and whether it wrote pending rollups.
func (s *Store) ingestOnce(ctx context.Context, uniq []*meter.Event) (int, bool, error) {
	ids := make([]string, len(uniq))
	tss := make([]time.Time, len(uniq))
	for i, ev := range uniq {
		ids[i], tss[i] = ev.ID, ev.Timestamp
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op

	// One round trip: take the meter lock, read the meter version, and claim
	// the ids; ON CONFLICT returns only the ids nobody stored before.
	b := &pgx.Batch{}
	var version int64
	b.Queue(`SELECT version FROM meter_version, pg_advisory_xact_lock_shared($1)`, meterLockID).QueryRow(func(row pgx.Row) error {
		return row.Scan(&version)
	})
	newIDs := make(map[string]struct{}, len(uniq))
	b.Queue(`INSERT INTO event_ids (id, ts) SELECT * FROM unnest($1::text[], $2::timestamptz[])
		ON CONFLICT (id) DO NOTHING RETURNING id`, ids, tss).Query(func(rows pgx.Rows) error {
		var id string
		_, err := pgx.ForEachRow(rows, []any{&id}, func() error {
			newIDs[id] = struct{}{}
			return nil
		})
		return err
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, false, err
	}
	if len(newIDs) == 0 {
		return 0, false, tx.Commit(ctx)
	}
	meters, err := s.activeMeters(ctx, tx, version)
	if err != nil {
		return 0, false, err
	}
	fresh := make([]*meter.Event, 0, len(newIDs))
	agg := newAggregator()
	for _, ev := range uniq {
		if _, ok := newIDs[ev.ID]; ok {
			fresh = append(fresh, ev)
			agg.add(*ev, meters.byName[ev.Name])
		}
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"id", "customer_id", "name", "ts", "properties"},
		pgx.CopyFromSlice(len(fresh), func(i int) ([]any, error) {
			ev := fresh[i]
			var props []byte
			if len(ev.RawProperties) > 0 {
				props = ev.RawProperties
			}
			return []any{ev.ID, ev.CustomerID, ev.Name, ev.Timestamp, props}, nil
		}))
	if err != nil {
		return 0, false, fmt.Errorf("copy events: %w", err)
	}
	if err := agg.write(ctx, tx); err != nil {
		return 0, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, false, err
	}
	return len(fresh), agg.len() > 0, nil
}

// ensurePartitions creates the monthly partitions the events need, once per
// month and Store.
func (s *Store) ensurePartitions(ctx context.Context, evs []*meter.Event) error {
	c := s.ingest
	var missing []time.Time
	c.partMu.Lock()
	for _, ev := range evs {
		t := ev.Timestamp.UTC()
		key := t.Format("2006-01")
		if !c.partitions[key] {
			c.partitions[key] = true // claimed; removed again on failure
			missing = append(missing, t)
		}
	}
	c.partMu.Unlock()
	for i, t := range missing {
		if _, err := s.pool.Exec(ctx, `SELECT events_partition_for($1)`, t); err != nil {
			c.partMu.Lock()
			for _, u := range missing[i:] {
				delete(c.partitions, u.Format("2006-01"))
			}
			c.partMu.Unlock()
			return fmt.Errorf("create events partition for %s: %w", t.Format("2006-01"), err)
		}
	}
	return nil
}

// rollupKey identifies one rollup row.
type rollupKey struct {
	customer, meter string
	bucket          time.Time
}

// aggregator folds events into per-hour rollups and unique keys in Go, so
// that the database gets one upsert per row per batch.
type aggregator struct {
	rollups map[rollupKey]*meter.Rollup
	keys    map[rollupKey]map[string]struct{}
	last    map[string]bool // slugs of last meters
}

func newAggregator() *aggregator {
	return &aggregator{rollups: map[rollupKey]*meter.Rollup{}, keys: map[rollupKey]map[string]struct{}{}, last: map[string]bool{}}
}

func (a *aggregator) len() int { return len(a.rollups) }

// add folds ev into the rollups of the meters (all of ev's event name).
func (a *aggregator) add(ev meter.Event, meters []meter.Meter) {
	if len(meters) == 0 {
		return
	}
	bucket := ev.Timestamp.UTC().Truncate(time.Hour)
	for i := range meters {
		m := &meters[i]
		if m.Aggregation == meter.AggregationUniqueCount {
			key, ok := m.UniqueKey(ev)
			if !ok {
				continue
			}
			k := rollupKey{ev.CustomerID, m.Slug, bucket}
			a.rollup(k).Count++
			set := a.keys[k]
			if set == nil {
				set = map[string]struct{}{}
				a.keys[k] = set
			}
			set[key] = struct{}{}
			continue
		}
		v, ok := m.Value(ev)
		if !ok {
			continue
		}
		k := rollupKey{ev.CustomerID, m.Slug, bucket}
		r := a.rollup(k)
		if m.Aggregation == meter.AggregationCount {
			r.Count++ // count meters keep no values: sum is the count
			continue
		}
		if m.Aggregation == meter.AggregationLast {
			a.last[m.Slug] = true
		}
		r.Add(v, ev.Timestamp, ev.ID)
	}
}

func (a *aggregator) rollup(k rollupKey) *meter.Rollup {
	r := a.rollups[k]
	if r == nil {
		r = &meter.Rollup{}
		a.rollups[k] = r
	}
	return r
}

// StoredEvent is an event as stored, with the time it was received.
type StoredEvent struct {
	ID         string          `json:"id"`
	CustomerID string          `json:"customer_id"`
	Name       string          `json:"name"`
	Timestamp  time.Time       `json:"timestamp"`
	Properties json.RawMessage `json:"properties,omitempty"`
	ReceivedAt time.Time       `json:"received_at"`
}

// EventQuery selects a customer's raw events with event time in [From, To)
// (zero bounds are open), in (timestamp, id) order, Limit at a time,
// starting after Cursor (empty for the first page).
type EventQuery struct {
	CustomerID string
	From, To   time.Time
	Limit      int
	Cursor     string
}

// ErrBadCursor means an EventQuery's Cursor was not returned by Events.
var ErrBadCursor = errors.New("malformed cursor")

// Events returns one page of raw events and the cursor of the next page,
// empty when this page is the last.
func (s *Store) Events(ctx context.Context, q EventQuery) ([]StoredEvent, string, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	afterTS, afterID := time.Time{}, ""
	if q.Cursor != "" {
		var err error
		if afterTS, afterID, err = decodeCursor(q.Cursor); err != nil {
			return nil, "", err
		}
	}
	args := []any{q.CustomerID, q.Limit + 1}
	where := `customer_id = $1`
	if !q.From.IsZero() {
		args = append(args, q.From)
		where += fmt.Sprintf(` AND ts >= $%d`, len(args))
	}
	if !q.To.IsZero() {
		args = append(args, q.To)
		where += fmt.Sprintf(` AND ts < $%d`, len(args))
	}
	if q.Cursor != "" {
		args = append(args, afterTS, afterID)
		where += fmt.Sprintf(` AND (ts, id) > ($%d, $%d)`, len(args)-1, len(args))
	}
	rows, err := s.pool.Query(ctx, `SELECT id, customer_id, name, ts, properties, received_at FROM events
		WHERE `+where+` ORDER BY ts, id LIMIT $2`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	var out []StoredEvent
	var e StoredEvent
	var props []byte
	_, err = pgx.ForEachRow(rows, []any{&e.ID, &e.CustomerID, &e.Name, &e.Timestamp, &props, &e.ReceivedAt}, func() error {
		e.Properties = nil
		if props != nil {
			e.Properties = json.RawMessage(bytes.Clone(props))
		}
		e.Timestamp, e.ReceivedAt = e.Timestamp.UTC(), e.ReceivedAt.UTC()
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	next := ""
	if len(out) > q.Limit {
		out = out[:q.Limit]
		last := out[len(out)-1]
		next = encodeCursor(last.Timestamp, last.ID)
	}
	return out, next, nil
}

func encodeCursor(ts time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(ts.UTC().Format(time.RFC3339Nano) + "\n" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	tsText, id, ok := strings.Cut(string(raw), "\n")
	if !ok {
		return time.Time{}, "", ErrBadCursor
	}
	ts, err := time.Parse(time.RFC3339Nano, tsText)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	return ts, id, nil
}
