package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/billing/meter"
	"github.com/billcycle/billcycle/internal/testenv"
	"github.com/billcycle/billcycle/store"
)

// testMeters covers every aggregation, every operator and nested groups.
func testMeters() []meter.Meter {
	return []meter.Meter{
		{Slug: "calls", Name: "API calls", EventName: "api_call", Aggregation: meter.AggregationCount, Unit: "calls",
			Filter: &meter.Filter{Logic: meter.LogicAnd, Conditions: []meter.Condition{
				{Property: "response.status", Operator: meter.OpLess, Value: json.Number("500")},
				{Property: "path", Operator: meter.OpNotContains, Value: "/internal"},
			}}},
		{Slug: "tokens", Name: "Tokens", EventName: "api_call", Aggregation: meter.AggregationSum, Property: "tokens", Unit: "tokens",
			Filter: &meter.Filter{Logic: meter.LogicOr, Conditions: []meter.Condition{
				{Property: "model", Operator: meter.OpEquals, Value: "large"},
			}, Groups: []meter.Filter{{Logic: meter.LogicAnd, Conditions: []meter.Condition{
				{Property: "model", Operator: meter.OpNotEquals, Value: "large"},
				{Property: "tokens", Operator: meter.OpGreaterOrEqual, Value: json.Number("10")},
				{Property: "path", Operator: meter.OpContains, Value: "/v1"},
			}}}}},
		{Slug: "peak", Name: "Peak storage", EventName: "storage", Aggregation: meter.AggregationMax, Property: "gb", Unit: "GB"},
		{Slug: "low", Name: "Lowest storage", EventName: "storage", Aggregation: meter.AggregationMin, Property: "gb", Unit: "GB",
			Filter: &meter.Filter{Conditions: []meter.Condition{{Property: "gb", Operator: meter.OpGreater, Value: json.Number("0")}}}},
		{Slug: "current", Name: "Current storage", EventName: "storage", Aggregation: meter.AggregationLast, Property: "gb", Unit: "GB",
			Filter: &meter.Filter{Conditions: []meter.Condition{{Property: "gb", Operator: meter.OpLessOrEqual, Value: json.Number("1000")}}}},
		{Slug: "users", Name: "Active users", EventName: "api_call", Aggregation: meter.AggregationUniqueCount, Property: "user.id", Unit: "users"},
	}
}

var base = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)

// randomEvents makes n events over three customers and six hours, with
// some properties missing or of the wrong type.
func randomEvents(rng *rand.Rand, n int, prefix string) []meter.Event {
	models := []string{"large", "small", "tiny"}
	paths := []string{"/v1/chat", "/v2/chat", "/internal/health", "/v1/embed"}
	var out []meter.Event
	for i := range n {
		ev := meter.Event{
			ID:         fmt.Sprintf("%s-%d", prefix, i),
			CustomerID: fmt.Sprintf("cust-%d", rng.IntN(3)),
			Timestamp:  base.Add(time.Duration(rng.IntN(6*3600*1000)) * time.Millisecond),
		}
		props := map[string]any{}
		if rng.IntN(2) == 0 {
			ev.Name = "api_call"
			if rng.IntN(10) > 0 {
				props["response"] = map[string]any{"status": json.Number(fmt.Sprint([]int{200, 201, 404, 500, 503}[rng.IntN(5)]))}
			}
			props["path"] = paths[rng.IntN(len(paths))]
			props["model"] = models[rng.IntN(len(models))]
			switch rng.IntN(8) {
			case 0: // missing tokens
			case 1:
				props["tokens"] = "12" // a string does not sum
			default:
				props["tokens"] = json.Number(fmt.Sprintf("%d.%d", rng.IntN(40), rng.IntN(10)))
			}
			switch rng.IntN(6) {
			case 0:
			case 1:
				props["user"] = map[string]any{"id": json.Number(fmt.Sprint(rng.IntN(5)))}
			default:
				props["user"] = map[string]any{"id": fmt.Sprintf("u%d", rng.IntN(20))}
			}
		} else {
			ev.Name = "storage"
			if rng.IntN(10) > 0 {
				props["gb"] = json.Number(fmt.Sprintf("%d.%02d", rng.IntN(1200)-50, rng.IntN(100)))
			}
		}
		raw, _ := json.Marshal(props)
		ev.Properties, ev.RawProperties = props, raw
		out = append(out, ev)
	}
	return out
}

// direct aggregates events with no rollups at all: the oracle.
func direct(m meter.Meter, evs []meter.Event, customer string, from, to time.Time) decimal.Decimal {
	var vals []decimal.Decimal
	var lastAt time.Time
	var lastID string
	var last decimal.Decimal
	keys := map[string]bool{}
	count := 0
	for _, ev := range evs {
		if ev.CustomerID != customer || ev.Timestamp.Before(from) || !ev.Timestamp.Before(to) {
			continue
		}
		if m.Aggregation == meter.AggregationUniqueCount {
			if k, ok := m.UniqueKey(ev); ok {
				keys[k] = true
			}
			continue
		}
		v, ok := m.Value(ev)
		if !ok {
			continue
		}
		count++
		vals = append(vals, v)
		if lastID == "" || ev.Timestamp.After(lastAt) || ev.Timestamp.Equal(lastAt) && ev.ID > lastID {
			lastAt, lastID, last = ev.Timestamp, ev.ID, v
		}
	}
	switch m.Aggregation {
	case meter.AggregationCount:
		return decimal.NewFromInt(int64(count))
	case meter.AggregationUniqueCount:
		return decimal.NewFromInt(int64(len(keys)))
	case meter.AggregationSum:
		return decimal.Sum(decimal.Zero, vals...)
	}
	if len(vals) == 0 {
		return decimal.Zero
	}
	switch m.Aggregation {
	case meter.AggregationMax:
		return decimal.Max(vals[0], vals[1:]...)
	case meter.AggregationMin:
		return decimal.Min(vals[0], vals[1:]...)
	}
	return last
}

func createMeters(t *testing.T, s *store.Store, ms []meter.Meter) {
	t.Helper()
	for _, m := range ms {
		if _, _, err := s.CreateMeter(context.Background(), m, base.Add(-24*time.Hour)); err != nil {
			t.Fatalf("CreateMeter(%s): %v", m.Slug, err)
		}
	}
}

func ingest(t *testing.T, s *store.Store, evs []meter.Event) store.IngestResult {
	t.Helper()
	res, err := s.IngestEvents(context.Background(), slices.Clone(evs))
	if err != nil {
		t.Fatalf("IngestEvents: %v", err)
	}
	return res
}

// checkTotals compares MeterTotals with the oracle over aligned and
// unaligned ranges.
func checkTotals(t *testing.T, s *store.Store, ms []meter.Meter, stored []meter.Event) {
	t.Helper()
	ranges := [][2]time.Time{
		{base, base.Add(6 * time.Hour)},
		{base.Add(-time.Hour), base.Add(24 * time.Hour)},
		{base.Add(90 * time.Minute), base.Add(4*time.Hour + 17*time.Minute + 3*time.Second)},
		{base.Add(61 * time.Minute), base.Add(119 * time.Minute)},
		{base.Add(2 * time.Hour), base.Add(2 * time.Hour)},
	}
	for c := range 3 {
		customer := fmt.Sprintf("cust-%d", c)
		for _, r := range ranges {
			got, err := s.MeterTotals(context.Background(), customer, r[0], r[1])
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				want := direct(m, stored, customer, r[0], r[1])
				if !got[m.Slug].Equal(want) {
					t.Errorf("MeterTotals(%s, %s..%s)[%s] = %v, want %v", customer, r[0].Format(time.TimeOnly), r[1].Format(time.TimeOnly), m.Slug, got[m.Slug], want)
				}
			}
		}
	}
}

func TestRollupsEqualDirectAggregation(t *testing.T) {
	s := testenv.Store(t)
	// Without the background compactor every total below reads the
	// pending rollups until CompactRollups merges them.
	store.StopCompactor(s)
	ms := testMeters()
	createMeters(t, s, ms)
	rng := rand.New(rand.NewPCG(1, 2))
	evs := randomEvents(rng, 3000, "e")
	// Batches overlap (duplicates across batches) and repeat ids inside a
	// batch; only the first copy of an id counts.
	b1 := append(slices.Clone(evs[:1200]), evs[5], evs[7])
	b2 := evs[1000:2200]
	b3 := evs[2000:]
	// The first batch is compacted, the others stay pending: a total
	// merges both.
	r1 := ingest(t, s, b1)
	if _, err := s.CompactRollups(context.Background()); err != nil {
		t.Fatalf("CompactRollups: %v", err)
	}
	r2, r3 := ingest(t, s, b2), ingest(t, s, b3)
	tests := []struct {
		name                 string
		got                  store.IngestResult
		accepted, duplicates int
	}{
		{"first batch, two repeated within", r1, 1200, 2},
		{"second batch, 200 seen before", r2, 1000, 200},
		{"third batch, 200 seen before", r3, 800, 200},
	}
	for _, tt := range tests {
		if tt.got.Accepted != tt.accepted || tt.got.Duplicates != tt.duplicates {
			t.Errorf("%s: IngestEvents = %d accepted, %d duplicates; want %d, %d", tt.name, tt.got.Accepted, tt.got.Duplicates, tt.accepted, tt.duplicates)
		}
	}
	checkTotals(t, s, ms, evs)
	var pending int
	if err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM rollup_pending`).Scan(&pending); err != nil || pending == 0 {
		t.Fatalf("pending rollup rows before compaction = %d (%v), want some", pending, err)
	}
	// Compaction merges the deltas and changes no total.
	if merged, err := s.CompactRollups(context.Background()); err != nil || merged == 0 {
		t.Fatalf("CompactRollups = %d, %v; want rows merged", merged, err)
	}
	if err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM rollup_pending`).Scan(&pending); err != nil || pending != 0 {
		t.Errorf("pending rollup rows after compaction = %d (%v), want 0", pending, err)
	}
	checkTotals(t, s, ms, evs)

	// A replay of everything stores nothing and changes no total.
	again := ingest(t, s, evs)
	if again.Accepted != 0 || again.Duplicates != len(evs) {
		t.Errorf("replay = %+v, want all %d duplicates", again, len(evs))
	}
	checkTotals(t, s, ms, evs)
	var n int
	if err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil || n != len(evs) {
		t.Errorf("events table holds %d rows (%v), want %d", n, err, len(evs))
	}
}

func TestDuplicateIDAcrossCustomersIsADuplicate(t *testing.T) {
	s := testenv.Store(t)
	createMeters(t, s, testMeters()[:1])
	ev := meter.Event{ID: "same", CustomerID: "a", Name: "api_call", Timestamp: base,
		Properties: map[string]any{"path": "/v1"}, RawProperties: json.RawMessage(`{"path":"/v1"}`)}
	other := ev
	other.CustomerID, other.Timestamp = "b", base.AddDate(0, 2, 0)
	ingest(t, s, []meter.Event{ev})
	if res := ingest(t, s, []meter.Event{other}); res.Accepted != 0 || res.Duplicates != 1 {
		t.Errorf("same id for another customer and month = %+v, want a duplicate (ids are global)", res)
	}
}

func TestConcurrentBatchesForOneCustomer(t *testing.T) {
	s := testenv.Store(t)
	ms := testMeters()
	createMeters(t, s, ms)
	rng := rand.New(rand.NewPCG(3, 4))
	evs := randomEvents(rng, 4000, "c")
	for i := range evs {
		evs[i].CustomerID = "cust-0"
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	// Compactions run while batches arrive; every delta is merged once.
	stop := make(chan struct{})
	compacted := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				_, err := s.CompactRollups(context.Background())
				compacted <- err
				return
			default:
				if _, err := s.CompactRollups(context.Background()); err != nil {
					compacted <- err
					return
				}
			}
		}
	}()
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each worker sends its own slice plus half of its neighbour's,
			// so workers race on the same ids and the same rollup rows.
			lo := w * 500
			batch := slices.Clone(evs[lo : lo+500])
			batch = append(batch, evs[(lo+500)%4000:(lo+500)%4000+250]...)
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
			res, err := s.IngestEvents(context.Background(), batch)
			if err != nil {
				t.Errorf("worker %d: %v", w, err)
				return
			}
			mu.Lock()
			accepted += res.Accepted
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-compacted; err != nil {
		t.Fatalf("CompactRollups during ingest: %v", err)
	}
	if accepted != len(evs) {
		t.Errorf("concurrent batches accepted %d events, want %d", accepted, len(evs))
	}
	checkTotals(t, s, ms, evs)
}

func TestMeterCreatedAfterEventsCountsThem(t *testing.T) {
	s := testenv.Store(t)
	rng := rand.New(rand.NewPCG(5, 6))
	evs := randomEvents(rng, 500, "b")
	ms := testMeters()
	createMeters(t, s, ms[:1])
	ingest(t, s, evs[:300])
	createMeters(t, s, ms[1:]) // backfilled from the 300 stored events
	ingest(t, s, evs[300:])
	checkTotals(t, s, ms, evs)

	// The backfill is bounded: events before backfillFrom are not counted.
	late := meter.Meter{Slug: "late", Name: "Late", EventName: "storage", Aggregation: meter.AggregationCount}
	if _, _, err := s.CreateMeter(context.Background(), late, base.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := s.MeterTotals(context.Background(), "cust-1", base.Add(-time.Hour), base.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := direct(late, evs, "cust-1", base.Add(3*time.Hour), base.Add(24*time.Hour)); !got["late"].Equal(want) {
		t.Errorf("backfilled count = %v, want %v (events since backfillFrom)", got["late"], want)
	}
}

func TestCreateMeterIsIdempotentAndArchiveHidesIt(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	m := testMeters()[1]
	if _, created, err := s.CreateMeter(ctx, m, base); err != nil || !created {
		t.Fatalf("CreateMeter = %v, %v; want created", created, err)
	}
	got, created, err := s.CreateMeter(ctx, m, base)
	if err != nil || created || got.Slug != m.Slug || got.Filter == nil || len(got.Filter.Groups) != 1 {
		t.Errorf("repeat CreateMeter = %+v, %v, %v; want the stored meter, not created", got, created, err)
	}
	changed := m
	changed.Property = "other"
	if _, _, err := s.CreateMeter(ctx, changed, base); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateMeter with another definition: err = %v, want ErrConflict", err)
	}
	invalid := m
	invalid.Aggregation = "median"
	if _, _, err := s.CreateMeter(ctx, invalid, base); err == nil {
		t.Errorf("CreateMeter(invalid) = nil error")
	}
	ev := meter.Event{ID: "1", CustomerID: "c", Name: "api_call", Timestamp: base, Properties: map[string]any{"model": "large", "tokens": json.Number("5")},
		RawProperties: json.RawMessage(`{"model":"large","tokens":5}`)}
	ingest(t, s, []meter.Event{ev})
	a, err := s.ArchiveMeter(ctx, m.Slug)
	if err != nil || !a.Archived() {
		t.Fatalf("ArchiveMeter = %+v, %v", a, err)
	}
	ev.ID = "2"
	ingest(t, s, []meter.Event{ev})
	totals, err := s.MeterTotals(ctx, "c", base, base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := totals[m.Slug]; ok {
		t.Errorf("MeterTotals after archive = %v, want no %s", totals, m.Slug)
	}
	u, err := s.Usage(ctx, m.Slug, "c", base, base.Add(time.Hour), store.WindowHour)
	if err != nil || !u.Total.Equal(decimal.NewFromInt(5)) {
		t.Errorf("Usage of archived meter = %v, %v; want 5 (counted before archiving only)", u.Total, err)
	}
	if _, err := s.ArchiveMeter(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ArchiveMeter(nope) err = %v, want ErrNotFound", err)
	}
}

func TestUsageSeries(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	ms := testMeters()
	createMeters(t, s, ms)
	rng := rand.New(rand.NewPCG(7, 8))
	evs := randomEvents(rng, 1500, "u")
	ingest(t, s, evs)
	from, to := base.Add(30*time.Minute), base.Add(5*time.Hour+10*time.Minute)
	for _, m := range ms {
		for _, w := range []store.Window{store.WindowHour, store.WindowDay, store.WindowMonth} {
			t.Run(m.Slug+"/"+string(w), func(t *testing.T) {
				u, err := s.Usage(ctx, m.Slug, "cust-2", from, to, w)
				if err != nil {
					t.Fatal(err)
				}
				if want := direct(m, evs, "cust-2", from, to); !u.Total.Equal(want) {
					t.Errorf("Usage total = %v, want %v", u.Total, want)
				}
				if len(u.Series) == 0 || !u.Series[0].Start.Equal(from) || !u.Series[len(u.Series)-1].End.Equal(to) {
					t.Fatalf("series %v does not span %v..%v", u.Series, from, to)
				}
				for _, p := range u.Series {
					if want := direct(m, evs, "cust-2", p.Start, p.End); !p.Value.Equal(want) {
						t.Errorf("point %v..%v = %v, want %v", p.Start, p.End, p.Value, want)
					}
				}
			})
		}
	}
	if got := len(must(s.Usage(ctx, "calls", "cust-2", from, to, store.WindowHour)).Series); got != 6 {
		t.Errorf("hour series has %d points, want 6", got)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestEventsPagesInOrder(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	rng := rand.New(rand.NewPCG(9, 10))
	evs := randomEvents(rng, 700, "p")
	// One event far in the past: its month's partition is created on demand.
	evs[0].Timestamp = time.Date(2019, 7, 4, 12, 0, 0, 0, time.UTC)
	evs[0].CustomerID = "cust-1"
	ingest(t, s, evs)
	var want []string
	for _, ev := range evs {
		if ev.CustomerID == "cust-1" {
			want = append(want, ev.Timestamp.Format(time.RFC3339Nano)+" "+ev.ID)
		}
	}
	sort.Strings(want)
	var got []string
	cursor := ""
	pages := 0
	for {
		page, next, err := s.Events(ctx, store.EventQuery{CustomerID: "cust-1", Limit: 50, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, e := range page {
			got = append(got, e.Timestamp.Format(time.RFC3339Nano)+" "+e.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("paged events (%d pages) = %d events, want %d in (timestamp, id) order", pages, len(got), len(want))
	}
	page, _, err := s.Events(ctx, store.EventQuery{CustomerID: "cust-1", From: base.Add(time.Hour), To: base.Add(2 * time.Hour), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page {
		if e.Timestamp.Before(base.Add(time.Hour)) || !e.Timestamp.Before(base.Add(2*time.Hour)) {
			t.Errorf("event %s at %v outside the range", e.ID, e.Timestamp)
		}
	}
	if _, _, err := s.Events(ctx, store.EventQuery{CustomerID: "cust-1", Cursor: "!!"}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("Events with a bad cursor: err = %v, want ErrBadCursor", err)
	}
}

func TestCloseStopsCompactor(t *testing.T) {
	s := testenv.Store(t)
	createMeters(t, s, testMeters()[:1])
	if store.CompactorRunning(s) {
		t.Fatal("compactor running before any ingest, want it started by the first ingest")
	}
	ingest(t, s, randomEvents(rand.New(rand.NewPCG(7, 8)), 50, "k"))
	if !store.CompactorRunning(s) {
		t.Fatal("compactor not running after an ingest")
	}
	s.Close()
	if store.CompactorRunning(s) {
		t.Error("compactor still running after Close")
	}
}
