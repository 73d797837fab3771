package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/billing/meter"
)

// MeterTotals returns the customer's total of every active (non-archived)
// meter for event time in [from, to), keyed by meter slug; a meter without
// usage has total zero. Totals come from the hourly rollups; only when from
// or to is not on a whole hour are the customer's raw events of those
// partial hours read. Unique counts are exact over the whole range.
func (s *Store) MeterTotals(ctx context.Context, customerID string, from, to time.Time) (map[string]decimal.Decimal, error) {
	ms, err := s.Meters(ctx, false)
	if err != nil {
		return nil, err
	}
	meters := make([]meter.Meter, len(ms))
	for i, m := range ms {
		meters[i] = m.Meter
	}
	out, err := totals(ctx, s.pool, customerID, meters, from, to)
	if err != nil {
		return nil, fmt.Errorf("meter totals of %s: %w", customerID, err)
	}
	return out, nil
}

// totals computes the totals of meters for one customer and [from, to).
func totals(ctx context.Context, q querier, customerID string, meters []meter.Meter, from, to time.Time) (map[string]decimal.Decimal, error) {
	out := make(map[string]decimal.Decimal, len(meters))
	if len(meters) == 0 {
		return out, nil
	}
	for _, m := range meters {
		out[m.Slug] = decimal.Decimal{}
	}
	if !from.Before(to) {
		return out, nil
	}
	slugs := make([]string, len(meters))
	for i, m := range meters {
		slugs[i] = m.Slug
	}
	rollups := make(map[string]*meter.Rollup, len(meters))
	for _, m := range meters {
		rollups[m.Slug] = &meter.Rollup{}
	}
	// Unique-count keys of the partial hours and of pending deltas; the
	// count query unions them with the compacted keys.
	extraKeys := map[string][]string{}

	hFrom, hTo := ceilHour(from), to.UTC().Truncate(time.Hour)
	if hFrom.Before(hTo) {
		// One statement, so one snapshot: compaction moves deltas from
		// rollup_pending to rollups, and this sees each delta on one side.
		rows, err := q.Query(ctx, `SELECT meter, sum(count)::bigint, sum(sum)::text, min(min)::text, max(max)::text,
				(array_agg(last_value ORDER BY last_at DESC, last_id DESC, last_value DESC) FILTER (WHERE last_at IS NOT NULL))[1]::text,
				(array_agg(last_at ORDER BY last_at DESC, last_id DESC, last_value DESC) FILTER (WHERE last_at IS NOT NULL))[1],
				(array_agg(last_id ORDER BY last_at DESC, last_id DESC, last_value DESC) FILTER (WHERE last_at IS NOT NULL))[1],
				NULL::bytea
			FROM rollups WHERE customer_id = $1 AND meter = ANY($2) AND bucket >= $3 AND bucket < $4
			GROUP BY meter
			UNION ALL
			SELECT NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, data FROM rollup_pending WHERE slot = $5`,
			customerID, slugs, hFrom, hTo, rollupSlot(customerID))
		if err != nil {
			return nil, err
		}
		var slug *string
		var r rollupRow
		var data []byte
		_, err = pgx.ForEachRow(rows, append(r.dest(&slug), &data), func() error {
			if data != nil {
				return decodePending(data, customerID, func(_ string, p *pendingCustomer) {
					for _, d := range p.deltas {
						if dst := rollups[d.meter]; dst != nil && !d.bucket.Before(hFrom) && d.bucket.Before(hTo) {
							dst.Merge(d.r)
						}
					}
					for _, k := range p.keys {
						if rollups[k.meter] != nil && !k.bucket.Before(hFrom) && k.bucket.Before(hTo) {
							extraKeys[k.meter] = append(extraKeys[k.meter], k.key)
						}
					}
				})
			}
			got, err := r.rollup()
			if err != nil {
				return fmt.Errorf("meter %s: %w", *slug, err)
			}
			if dst := rollups[*slug]; dst != nil {
				dst.Merge(got)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}

	// Partial hours at the edges come from the raw events.
	type span struct{ from, to time.Time }
	var edges []span
	if !hFrom.Before(hTo) {
		edges = append(edges, span{from, to})
	} else {
		if from.Before(hFrom) {
			edges = append(edges, span{from, hFrom})
		}
		if hTo.Before(to) {
			edges = append(edges, span{hTo, to})
		}
	}
	for _, e := range edges {
		if err := foldRawEvents(ctx, q, customerID, meters, e.from, e.to, rollups, extraKeys); err != nil {
			return nil, err
		}
	}

	for _, m := range meters {
		var unique int64
		if m.Aggregation == meter.AggregationUniqueCount {
			// Pending keys were read before this statement: a key compacted
			// meanwhile is in both, and counted once.
			keys := extraKeys[m.Slug]
			if keys == nil {
				keys = []string{}
			}
			if err := q.QueryRow(ctx, `SELECT count(*) FROM (
					SELECT key FROM rollup_unique_keys WHERE customer_id = $1 AND meter = $2 AND bucket >= $3 AND bucket < $4
					UNION SELECT unnest($5::text[])) k`,
				customerID, m.Slug, hFrom, hTo, keys).Scan(&unique); err != nil {
				return nil, fmt.Errorf("unique count of %s: %w", m.Slug, err)
			}
		}
		out[m.Slug] = rollups[m.Slug].Result(m.Aggregation, unique)
	}
	return out, nil
}

// foldRawEvents adds the customer's raw events in [from, to) to the
// rollups of meters, and their unique keys to keys.
func foldRawEvents(ctx context.Context, q querier, customerID string, meters []meter.Meter, from, to time.Time,
	rollups map[string]*meter.Rollup, keys map[string][]string) error {
	rows, err := q.Query(ctx, `SELECT id, name, ts, properties FROM events WHERE customer_id = $1 AND ts >= $2 AND ts < $3`, customerID, from, to)
	if err != nil {
		return fmt.Errorf("read raw events: %w", err)
	}
	ev := meter.Event{CustomerID: customerID}
	var props []byte
	_, err = pgx.ForEachRow(rows, []any{&ev.ID, &ev.Name, &ev.Timestamp, &props}, func() error {
		p, err := decodeProperties(props)
		if err != nil {
			return fmt.Errorf("event %s: %w", ev.ID, err)
		}
		ev.Properties = p
		for _, m := range meters {
			if m.Aggregation == meter.AggregationUniqueCount {
				if k, ok := m.UniqueKey(ev); ok {
					keys[m.Slug] = append(keys[m.Slug], k)
				}
				continue
			}
			foldEvent(rollups[m.Slug], m, ev)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read raw events: %w", err)
	}
	return nil
}

// foldEvent adds ev to r when it counts for m (not a unique-count meter):
// count meters keep only the count, the others the value.
func foldEvent(r *meter.Rollup, m meter.Meter, ev meter.Event) {
	v, ok := m.Value(ev)
	if !ok {
		return
	}
	if m.Aggregation == meter.AggregationCount {
		r.Count++
		return
	}
	r.Add(v, ev.Timestamp, ev.ID)
}

// rollupRow scans an aggregated rollup row.
type rollupRow struct {
	count               int64
	sum, min, max, last *string
	lastAt              *time.Time
	lastID              *string
}

func (r *rollupRow) dest(lead ...any) []any {
	return append(lead, &r.count, &r.sum, &r.min, &r.max, &r.last, &r.lastAt, &r.lastID)
}

func (r *rollupRow) rollup() (meter.Rollup, error) {
	out := meter.Rollup{Count: r.count}
	var err error
	if r.sum != nil {
		if out.Sum, err = decimal.NewFromString(*r.sum); err != nil {
			return out, err
		}
	}
	if r.min == nil || r.max == nil {
		return out, nil // no values: a count or unique_count meter
	}
	out.HasValue = true
	if out.Min, err = decimal.NewFromString(*r.min); err != nil {
		return out, err
	}
	if out.Max, err = decimal.NewFromString(*r.max); err != nil {
		return out, err
	}
	// Only last meters keep the last value.
	if r.last != nil && r.lastAt != nil && r.lastID != nil {
		if out.Last, err = decimal.NewFromString(*r.last); err != nil {
			return out, err
		}
		out.LastAt, out.LastID = *r.lastAt, *r.lastID
	}
	return out, nil
}

func ceilHour(t time.Time) time.Time {
	t = t.UTC()
	h := t.Truncate(time.Hour)
	if h.Equal(t) {
		return h
	}
	return h.Add(time.Hour)
}

// Window is the step of a usage time series.
type Window string

// Windows of a usage series, in UTC.
const (
	WindowHour  Window = "hour"
	WindowDay   Window = "day"
	WindowMonth Window = "month"
)

// MaxUsagePoints bounds the length of a usage series.
const MaxUsagePoints = 10000

// ErrTooManyPoints means a usage series would exceed MaxUsagePoints.
var ErrTooManyPoints = errors.New("too many points in usage series")

// UsagePoint is a meter's quantity over [Start, End).
type UsagePoint struct {
	Start time.Time       `json:"start"`
	End   time.Time       `json:"end"`
	Value decimal.Decimal `json:"value"`
}

// Usage is a customer's quantity of one meter over a range, in total and as
// a series with one point per window (zero where there was no usage).
type Usage struct {
	Meter      string          `json:"meter"`
	CustomerID string          `json:"customer_id"`
	From       time.Time       `json:"from"`
	To         time.Time       `json:"to"`
	Window     Window          `json:"window"`
	Total      decimal.Decimal `json:"total"`
	Series     []UsagePoint    `json:"series"`
}

// Usage returns the customer's usage of meter slug (archived or not) over
// [from, to) with one point per window (hour, or UTC day or month), each
// clipped to the range. The
// total is exact over the whole range (a unique count is not the sum of
// the points' counts). It returns ErrNotFound for an unknown meter and
// ErrTooManyPoints past MaxUsagePoints.
func (s *Store) Usage(ctx context.Context, slug, customerID string, from, to time.Time, window Window) (Usage, error) {
	switch window {
	case WindowHour, WindowDay, WindowMonth:
	default:
		return Usage{}, fmt.Errorf("usage window %q: want hour, day or month", window)
	}
	m, err := s.Meter(ctx, slug)
	if err != nil {
		return Usage{}, err
	}
	from, to = from.UTC(), to.UTC()
	u := Usage{Meter: slug, CustomerID: customerID, From: from, To: to, Window: window, Series: []UsagePoint{}}
	var bounds []time.Time
	for t := from; t.Before(to); t = nextWindow(t, window) {
		if len(bounds) >= MaxUsagePoints {
			return Usage{}, ErrTooManyPoints
		}
		bounds = append(bounds, t)
	}
	tot, err := totals(ctx, s.pool, customerID, []meter.Meter{m.Meter}, from, to)
	if err != nil {
		return Usage{}, fmt.Errorf("usage of %s for %s: %w", slug, customerID, err)
	}
	u.Total = tot[slug]

	// Windows on whole hours come from one grouped read of the rollups and
	// pending deltas; the
	// first and last window may start or end inside an hour and are totalled
	// on their own.
	hFrom, hTo := ceilHour(from), to.Truncate(time.Hour)
	grouped := map[time.Time]decimal.Decimal{}
	if hFrom.Before(hTo) {
		if grouped, err = s.usageWindows(ctx, m.Meter, customerID, hFrom, hTo, window); err != nil {
			return Usage{}, fmt.Errorf("usage of %s for %s: %w", slug, customerID, err)
		}
	}
	for i, start := range bounds {
		end := to
		if i+1 < len(bounds) {
			end = bounds[i+1]
		}
		p := UsagePoint{Start: start, End: end}
		if start.Equal(start.Truncate(time.Hour)) && end.Equal(end.Truncate(time.Hour)) {
			p.Value = grouped[truncWindow(start, window)]
		} else {
			v, err := totals(ctx, s.pool, customerID, []meter.Meter{m.Meter}, start, end)
			if err != nil {
				return Usage{}, fmt.Errorf("usage of %s for %s: %w", slug, customerID, err)
			}
			p.Value = v[slug]
		}
		u.Series = append(u.Series, p)
	}
	return u, nil
}

// usageWindows returns m's quantity per window over the whole hours
// [hFrom, hTo), from the rollups and the customer's pending deltas.
func (s *Store) usageWindows(ctx context.Context, m meter.Meter, customerID string, hFrom, hTo time.Time, window Window) (map[time.Time]decimal.Decimal, error) {
	out := map[time.Time]decimal.Decimal{}
	inRange := func(slug string, b time.Time) bool { return slug == m.Slug && !b.Before(hFrom) && b.Before(hTo) }
	if m.Aggregation == meter.AggregationUniqueCount {
		// Pending keys first: a key compacted meanwhile is in both, and
		// counted once.
		p, err := customerPending(ctx, s.pool, customerID)
		if err != nil {
			return nil, err
		}
		buckets, keys := []time.Time{}, []string{}
		for _, k := range p.keys {
			if inRange(k.meter, k.bucket) {
				buckets, keys = append(buckets, k.bucket), append(keys, k.key)
			}
		}
		rows, err := s.pool.Query(ctx, `SELECT date_trunc($5, bucket, 'UTC'), count(DISTINCT key) FROM (
				SELECT bucket, key FROM rollup_unique_keys WHERE customer_id = $1 AND meter = $2 AND bucket >= $3 AND bucket < $4
				UNION ALL SELECT * FROM unnest($6::timestamptz[], $7::text[])) k
			GROUP BY 1`, customerID, m.Slug, hFrom, hTo, string(window), buckets, keys)
		if err != nil {
			return nil, err
		}
		var w time.Time
		var n int64
		_, err = pgx.ForEachRow(rows, []any{&w, &n}, func() error {
			out[w.UTC()] = decimal.NewFromInt(n)
			return nil
		})
		return out, err
	}
	// One statement, so one snapshot (see totals).
	rows, err := s.pool.Query(ctx, `SELECT date_trunc($5, bucket, 'UTC'), sum(count)::bigint, sum(sum)::text, min(min)::text, max(max)::text,
			(array_agg(last_value ORDER BY last_at DESC, last_id DESC, last_value DESC) FILTER (WHERE last_at IS NOT NULL))[1]::text,
			(array_agg(last_at ORDER BY last_at DESC, last_id DESC, last_value DESC) FILTER (WHERE last_at IS NOT NULL))[1],
			(array_agg(last_id ORDER BY last_at DESC, last_id DESC, last_value DESC) FILTER (WHERE last_at IS NOT NULL))[1],
			NULL::bytea
		FROM rollups WHERE customer_id = $1 AND meter = $2 AND bucket >= $3 AND bucket < $4 GROUP BY 1
		UNION ALL
		SELECT NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, data FROM rollup_pending WHERE slot = $6`,
		customerID, m.Slug, hFrom, hTo, string(window), rollupSlot(customerID))
	if err != nil {
		return nil, err
	}
	windows := map[time.Time]*meter.Rollup{}
	at := func(w time.Time) *meter.Rollup {
		r := windows[w]
		if r == nil {
			r = &meter.Rollup{}
			windows[w] = r
		}
		return r
	}
	var w *time.Time
	var r rollupRow
	var data []byte
	_, err = pgx.ForEachRow(rows, append(r.dest(&w), &data), func() error {
		if data != nil {
			return decodePending(data, customerID, func(_ string, p *pendingCustomer) {
				for _, d := range p.deltas {
					if inRange(d.meter, d.bucket) {
						at(truncWindow(d.bucket, window)).Merge(d.r)
					}
				}
			})
		}
		got, err := r.rollup()
		if err != nil {
			return err
		}
		at(w.UTC()).Merge(got)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for w, r := range windows {
		out[w] = r.Result(m.Aggregation, 0)
	}
	return out, nil
}

// truncWindow returns the start of the window holding t.
func truncWindow(t time.Time, w Window) time.Time {
	switch w {
	case WindowDay:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case WindowMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	default:
		return t.Truncate(time.Hour)
	}
}

// nextWindow returns the start of the window after the one holding t.
func nextWindow(t time.Time, w Window) time.Time {
	switch w {
	case WindowDay:
		return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
	case WindowMonth:
		return time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	default:
		return t.Truncate(time.Hour).Add(time.Hour)
	}
}
