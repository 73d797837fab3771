package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/billing/meter"
)

// ingestState is a Store's metering state between calls: the active meters,
// the partitions known to exist, the background compactor and the handler
// of the watch levels it finds reached.
type ingestState struct {
	mu  sync.Mutex
	set *meterSet

	partMu     sync.Mutex
	partitions map[string]bool // months ("2026-11") whose events partition exists

	// compactMu makes CompactRollups one at a time in this process, so a
	// caller that returns from it knows every earlier delta was merged by
	// it or by the run it waited for.
	compactMu sync.Mutex

	loopMu    sync.Mutex
	onCrossed func(context.Context, []Crossing)
	running   bool          // the compactor goroutine was started
	closed    bool          // the Store was closed: start nothing
	kick      chan struct{} // wakes the compactor; capacity 1
	cancel    context.CancelFunc
	done      chan struct{} // closed when the compactor goroutine ends
}

func newIngestState() *ingestState {
	return &ingestState{partitions: map[string]bool{}, kick: make(chan struct{}, 1)}
}

// compactEvery is the shortest pause between two compactions while ingest
// goes on: long enough that one compaction merges many batches, short enough
// that a watch level reached is reported within a second or two. After a
// long compaction the pause is as long as the compaction took, so that
// compaction never takes more than about half of the database's time
// from ingest (its cost grows with the rollup rows it updates, not with
// the batches it merges).
const compactEvery = 500 * time.Millisecond

// compactIdle is how often an idle compactor looks for pending rows anyway
// (left by a failed run, another server or a crash).
const compactIdle = 5 * time.Second

// compactLockID keys the advisory lock of CompactRollups.
const compactLockID = 0x636f6d70 // "comp"

// HandleCrossings registers fn to receive the watch levels that compaction
// finds reached (see SetWatchLevels), usually within a second or two of
// the ingest that reached them; each reached level is deleted and passed to fn
// exactly once. fn runs on the compactor's goroutine (or in CompactRollups'
// caller) and should return promptly. Until a handler is registered,
// compaction leaves watch levels alone. A later call replaces fn.
func (s *Store) HandleCrossings(fn func(ctx context.Context, crossings []Crossing)) {
	st := s.ingest
	st.loopMu.Lock()
	st.onCrossed = fn
	st.loopMu.Unlock()
}

func (st *ingestState) crossingHandler() func(context.Context, []Crossing) {
	st.loopMu.Lock()
	defer st.loopMu.Unlock()
	return st.onCrossed
}

// kickCompactor wakes the compactor, starting it on first use.
func (st *ingestState) kickCompactor(s *Store) {
	st.loopMu.Lock()
	if !st.running && !st.closed {
		st.running = true
		ctx, cancel := context.WithCancel(context.Background())
		st.cancel, st.done = cancel, make(chan struct{})
		go st.compactLoop(ctx, s)
	}
	st.loopMu.Unlock()
	select {
	case st.kick <- struct{}{}:
	default: // a wake-up is already queued
	}
}

// stop ends the compactor and waits for it; nothing starts it again.
func (st *ingestState) stop() {
	st.loopMu.Lock()
	st.closed = true
	running, cancel, done := st.running, st.cancel, st.done
	st.loopMu.Unlock()
	if running {
		cancel()
		<-done
	}
}

// compactLoop compacts after each wake-up, then pauses (see compactEvery)
// so that busy ingest is merged in groups of batches. Failures are left to the next
// run: pending rows are read by every total, so they cost only read time.
func (st *ingestState) compactLoop(ctx context.Context, s *Store) {
	defer close(st.done)
	idle := time.NewTicker(compactIdle)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-st.kick:
		case <-idle.C:
		}
		start := time.Now()
		runCtx, cancel := context.WithTimeout(ctx, time.Minute)
		_, _ = s.CompactRollups(runCtx)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(compactEvery, time.Since(start))):
		}
	}
}

// CompactRollups merges the pending rollups and unique keys written by
// ingest into one row per customer, meter and hour, and returns how many
// rollup rows it inserted or updated. Totals are the same before and after;
// compaction keeps reads short. Pending rows are deleted and merged in one
// transaction, so concurrent compactions (several servers) merge every delta
// exactly once; while another server compacts, it returns 0 at once.
//
// When a crossing handler is registered (HandleCrossings), it then compares
// the totals of the (customer, meter) pairs it merged with their watch
// levels, deletes each level reached and passes those crossings to the
// handler before returning. The Store's background compactor calls it a
// fraction of a second after ingest; calling it directly is for tests and
// tools.
func (s *Store) CompactRollups(ctx context.Context) (int64, error) {
	st := s.ingest
	st.compactMu.Lock()
	defer st.compactMu.Unlock()
	handler := st.crossingHandler()
	var merged int64
	var crossings []Crossing
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// One compactor at a time across servers: a second one would only
		// wait on the first one's rows.
		var got bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, compactLockID).Scan(&got); err != nil || !got {
			return err
		}
		// Sorting a large merge in memory is cheaper than spilling it.
		if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '64MB'; SET LOCAL jit = off`); err != nil {
			return err
		}
		c, err := takePending(ctx, tx)
		if err != nil {
			return err
		}
		if merged, err = c.upsert(ctx, tx); err != nil {
			return err
		}
		if handler == nil || len(c.touched) == 0 {
			return nil
		}
		levels, err := touchedLevels(ctx, tx, c.touched)
		if err != nil || len(levels) == 0 {
			return err
		}
		crossings, err = s.reachedLevels(ctx, tx, levels)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("compact rollups: %w", err)
	}
	if len(crossings) > 0 {
		handler(ctx, crossings)
	}
	return merged, nil
}

// compaction is the merge of all pending rows taken by one compaction.
type compaction struct {
	rollups map[rollupKey]*meter.Rollup
	last    map[rollupKey]bool // rollups that keep their last value
	keys    map[pendingKeyOf]struct{}
	touched map[[2]string]bool // (customer, meter) pairs merged
}

// pendingKeyOf is one unique-count key row.
type pendingKeyOf struct {
	rollupKey
	key string
}

// takePending deletes every visible pending row and merges them.
func takePending(ctx context.Context, tx pgx.Tx) (*compaction, error) {
	c := &compaction{rollups: map[rollupKey]*meter.Rollup{}, last: map[rollupKey]bool{},
		keys: map[pendingKeyOf]struct{}{}, touched: map[[2]string]bool{}}
	rows, err := tx.Query(ctx, `DELETE FROM rollup_pending RETURNING data`)
	if err != nil {
		return nil, err
	}
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&data}, func() error {
		return decodePending(data, "", func(customer string, p *pendingCustomer) {
			for _, d := range p.deltas {
				k := rollupKey{customer, d.meter, d.bucket}
				if r := c.rollups[k]; r != nil {
					r.Merge(d.r)
				} else {
					r := d.r
					c.rollups[k] = &r
				}
				if d.last {
					c.last[k] = true
				}
				c.touched[[2]string{customer, d.meter}] = true
			}
			for _, k := range p.keys {
				c.keys[pendingKeyOf{rollupKey{customer, k.meter, k.bucket}, k.key}] = struct{}{}
			}
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read pending rollups: %w", err)
	}
	return c, nil
}

// upsert merges the compaction into rollups and rollup_unique_keys, in key
// order, and returns the number of rollup rows written.
func (c *compaction) upsert(ctx context.Context, tx pgx.Tx) (int64, error) {
	if len(c.rollups) == 0 {
		return 0, nil
	}
	keys := make([]rollupKey, 0, len(c.rollups))
	for k := range c.rollups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareRollupKeys)
	n := len(keys)
	customers, meters, buckets, counts := make([]string, n), make([]string, n), make([]time.Time, n), make([]int64, n)
	sums, mins, maxs := make([]string, n), make([]*string, n), make([]*string, n)
	lasts, lastAts, lastIDs := make([]*string, n), make([]*time.Time, n), make([]*string, n)
	for i, k := range keys {
		r := c.rollups[k]
		customers[i], meters[i], buckets[i], counts[i] = k.customer, k.meter, k.bucket, r.Count
		if !r.HasValue {
			sums[i] = strconv.FormatInt(r.Count, 10) // count meters: sum is the count
			continue
		}
		sums[i] = r.Sum.String()
		mins[i], maxs[i] = ptr(r.Min.String()), ptr(r.Max.String())
		if c.last[k] {
			lasts[i], lastAts[i], lastIDs[i] = ptr(r.Last.String()), ptr(r.LastAt), ptr(r.LastID)
		}
	}
	tag, err := tx.Exec(ctx, `
		INSERT INTO rollups AS r (customer_id, meter, bucket, count, sum, min, max, last_value, last_at, last_id)
		SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::text[]::numeric[], $6::text[]::numeric[],
			$7::text[]::numeric[], $8::text[]::numeric[], $9::timestamptz[], $10::text[])
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
				THEN coalesce(excluded.last_at, r.last_at) ELSE r.last_at END`,
		customers, meters, buckets, counts, sums, mins, maxs, lasts, lastAts, lastIDs)
	if err != nil {
		return 0, fmt.Errorf("merge rollups: %w", err)
	}
	if len(c.keys) > 0 {
		uk := make([]pendingKeyOf, 0, len(c.keys))
		for k := range c.keys {
			uk = append(uk, k)
		}
		slices.SortFunc(uk, func(a, b pendingKeyOf) int {
			if c := compareRollupKeys(a.rollupKey, b.rollupKey); c != 0 {
				return c
			}
			return strings.Compare(a.key, b.key)
		})
		n := len(uk)
		customers, meters, buckets, values := make([]string, n), make([]string, n), make([]time.Time, n), make([]string, n)
		for i, k := range uk {
			customers[i], meters[i], buckets[i], values[i] = k.customer, k.meter, k.bucket, k.key
		}
		if _, err := tx.Exec(ctx, `INSERT INTO rollup_unique_keys (customer_id, meter, bucket, key)
			SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) ON CONFLICT DO NOTHING`,
			customers, meters, buckets, values); err != nil {
			return 0, fmt.Errorf("merge unique keys: %w", err)
		}
	}
	return tag.RowsAffected(), nil
}

func compareRollupKeys(a, b rollupKey) int {
	if c := strings.Compare(a.customer, b.customer); c != 0 {
		return c
	}
	if c := strings.Compare(a.meter, b.meter); c != 0 {
		return c
	}
	return a.bucket.Compare(b.bucket)
}

func ptr[T any](v T) *T { return &v }

// touchedLevels returns the watch levels of the (customer, meter) pairs.
func touchedLevels(ctx context.Context, tx pgx.Tx, touched map[[2]string]bool) ([]WatchLevel, error) {
	customers, meters := make([]string, 0, len(touched)), make([]string, 0, len(touched))
	for k := range touched {
		customers, meters = append(customers, k[0]), append(meters, k[1])
	}
	rows, err := tx.Query(ctx, `SELECT w.customer_id, w.meter, w.period_from, w.level::text FROM watch_levels w
		JOIN unnest($1::text[], $2::text[]) AS t(customer_id, meter) ON w.customer_id = t.customer_id AND w.meter = t.meter`,
		customers, meters)
	if err != nil {
		return nil, fmt.Errorf("read watch levels: %w", err)
	}
	out, err := scanWatchLevels(rows)
	if err != nil {
		return nil, fmt.Errorf("read watch levels: %w", err)
	}
	return out, nil
}

// reachedLevels computes the total of each level's customer and meter since
// the level's period start over the usage merged so far, and deletes the
// levels reached, returning them as crossings. Usage still pending is checked
// by the compaction that merges it. It runs in the compaction transaction,
// so under the compaction lock: exactly one compactor reports a level.
func (s *Store) reachedLevels(ctx context.Context, tx pgx.Tx, levels []WatchLevel) ([]Crossing, error) {
	var version int64
	if err := tx.QueryRow(ctx, `SELECT version FROM meter_version`).Scan(&version); err != nil {
		return nil, fmt.Errorf("check watch levels: %w", err)
	}
	meters, err := s.activeMeters(ctx, tx, version)
	if err != nil {
		return nil, fmt.Errorf("check watch levels: %w", err)
	}
	var watched []watchedTotal
	for _, l := range levels {
		if m, ok := meters.bySlug[l.Meter]; ok {
			watched = append(watched, watchedTotal{level: l, meter: m})
		}
	}
	if err := watchTotals(ctx, tx, watched); err != nil {
		return nil, fmt.Errorf("check watch levels: %w", err)
	}
	var out []Crossing
	for _, w := range watched {
		l := w.level
		if w.total.Cmp(l.Level) < 0 {
			continue
		}
		tag, err := tx.Exec(ctx, `DELETE FROM watch_levels WHERE customer_id = $1 AND meter = $2 AND period_from = $3 AND level = $4::numeric`,
			l.CustomerID, l.Meter, l.From, l.Level.String())
		if err != nil {
			return nil, fmt.Errorf("clear watch level of %s: %w", l.CustomerID, err)
		}
		if tag.RowsAffected() == 1 {
			out = append(out, Crossing{CustomerID: l.CustomerID, Meter: l.Meter, Level: l.Level, Total: w.total})
		}
	}
	return out, nil
}

// watchedTotal is a watch level, its meter and the total found for it.
type watchedTotal struct {
	level WatchLevel
	meter meter.Meter
	total decimal.Decimal
}

// watchTotals sets the total of each watched level from its period start
// on: compacted rollups for the whole hours, raw events for a first partial
// hour, in two queries for all levels together (a unique count is exact
// only over all its keys, so those levels are totalled one by one).
func watchTotals(ctx context.Context, q querier, ws []watchedTotal) error {
	var customers, slugs []string
	var hFroms, froms, edgeTos []time.Time
	var idx, edgeIdx []int
	rollups := make([]meter.Rollup, len(ws))
	for i := range ws {
		w := &ws[i]
		if w.meter.Aggregation == meter.AggregationUniqueCount {
			tot, err := totals(ctx, q, w.level.CustomerID, []meter.Meter{w.meter}, w.level.From, watchHorizon)
			if err != nil {
				return err
			}
			w.total = tot[w.meter.Slug]
			continue
		}
		hFrom := ceilHour(w.level.From)
		customers, slugs, hFroms, idx = append(customers, w.level.CustomerID), append(slugs, w.meter.Slug), append(hFroms, hFrom), append(idx, i)
		if w.level.From.Before(hFrom) {
			froms, edgeTos, edgeIdx = append(froms, w.level.From), append(edgeTos, hFrom), append(edgeIdx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	rows, err := q.Query(ctx, `SELECT w.i, sum(r.count)::bigint, sum(r.sum)::text, min(r.min)::text, max(r.max)::text,
			(array_agg(r.last_value ORDER BY r.last_at DESC, r.last_id DESC, r.last_value DESC) FILTER (WHERE r.last_at IS NOT NULL))[1]::text,
			(array_agg(r.last_at ORDER BY r.last_at DESC, r.last_id DESC, r.last_value DESC) FILTER (WHERE r.last_at IS NOT NULL))[1],
			(array_agg(r.last_id ORDER BY r.last_at DESC, r.last_id DESC, r.last_value DESC) FILTER (WHERE r.last_at IS NOT NULL))[1]
		FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int[]) AS w(customer_id, meter, hfrom, i)
		JOIN rollups r ON r.customer_id = w.customer_id AND r.meter = w.meter AND r.bucket >= w.hfrom AND r.bucket < $5
		GROUP BY w.i`, customers, slugs, hFroms, idx, watchHorizon)
	if err != nil {
		return err
	}
	var i int
	var r rollupRow
	_, err = pgx.ForEachRow(rows, r.dest(&i), func() error {
		got, err := r.rollup()
		if err != nil {
			return err
		}
		rollups[i].Merge(got)
		return nil
	})
	if err != nil {
		return err
	}
	if len(edgeIdx) > 0 {
		edgeCustomers := make([]string, len(edgeIdx))
		for j, i := range edgeIdx {
			edgeCustomers[j] = ws[i].level.CustomerID
		}
		rows, err := q.Query(ctx, `SELECT w.i, e.id, e.name, e.ts, e.properties
			FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::int[]) AS w(customer_id, lo, hi, i)
			JOIN events e ON e.customer_id = w.customer_id AND e.ts >= w.lo AND e.ts < w.hi`, edgeCustomers, froms, edgeTos, edgeIdx)
		if err != nil {
			return err
		}
		var ev meter.Event
		var props []byte
		_, err = pgx.ForEachRow(rows, []any{&i, &ev.ID, &ev.Name, &ev.Timestamp, &props}, func() error {
			m := ws[i].meter
			if ev.Name != m.EventName {
				return nil
			}
			p, err := decodeProperties(props)
			if err != nil {
				return fmt.Errorf("event %s: %w", ev.ID, err)
			}
			ev.CustomerID, ev.Properties = ws[i].level.CustomerID, p
			foldEvent(&rollups[i], m, ev)
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, i := range idx {
		ws[i].total = rollups[i].Result(ws[i].meter.Aggregation, 0)
	}
	return nil
}
