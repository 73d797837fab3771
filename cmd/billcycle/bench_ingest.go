package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
	"go.temporal.io/sdk/client"

	"github.com/billcycle/billcycle/starter"
)

func init() {
	benchmarks["ingest"] = benchIngest
	benchmarks["query"] = benchQuery
}

// countingTemporal is the Temporal client of the benchmark: it counts
// signals and starts nothing.
type countingTemporal struct{ signals atomic.Int64 }

func (c *countingTemporal) ExecuteWorkflow(context.Context, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	return nil, errors.New("the benchmark starts no workflows")
}

func (c *countingTemporal) SignalWorkflow(context.Context, string, string, string, any) error {
	c.signals.Add(1)
	return nil
}

func (c *countingTemporal) CheckHealth(context.Context, *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	return &client.CheckHealthResponse{}, nil
}

// benchEvent is one generated event, kept both as JSON for the API and as
// values for the CopyFrom baseline.
type benchEvent struct {
	ID         string          `json:"id"`
	CustomerID string          `json:"customer_id"`
	Name       string          `json:"name"`
	Timestamp  time.Time       `json:"timestamp"`
	Properties json.RawMessage `json:"properties"`
}

func genEvents(rng *rand.Rand, run string, n, customers int, now time.Time) []benchEvent {
	models := []string{"large", "small", "small-v2", "embed"}
	paths := []string{"/v1/chat/completions", "/v1/embeddings", "/v1/images", "/v1/moderations"}
	statuses := []int{200, 200, 200, 200, 200, 201, 400, 404, 429, 500, 503}
	evs := make([]benchEvent, n)
	for i := range evs {
		ev := benchEvent{
			ID:         fmt.Sprintf("evt_%s_%09d", run, i),
			CustomerID: fmt.Sprintf("cust_%05d", rng.IntN(customers)),
			Name:       "api_call",
			Timestamp:  now.Add(-time.Duration(rng.Int64N(int64(3 * time.Hour)))).Truncate(time.Microsecond),
		}
		if rng.IntN(20) == 0 {
			ev.Name = "storage_snapshot"
			ev.Properties = json.RawMessage(fmt.Sprintf(`{"gb":%d.%02d,"region":"eu-west-1"}`, rng.IntN(5000), rng.IntN(100)))
		} else {
			ev.Properties = json.RawMessage(fmt.Sprintf(
				`{"model":%q,"tokens":%d,"user_id":"u_%d","path":%q,"response":{"status":%d,"latency_ms":%d.%d},"region":"us-east-1","sdk":"python/1.42.0"}`,
				models[rng.IntN(len(models))], rng.IntN(4000), rng.IntN(200), paths[rng.IntN(len(paths))],
				statuses[rng.IntN(len(statuses))], rng.IntN(2000), rng.IntN(10)))
		}
		evs[i] = ev
	}
	return evs
}

func benchIngest(ctx context.Context, args []string) error {
	fs := flagSet("bench ingest", "drive POST /v1/events with concurrent batches; compare with a raw CopyFrom; replay as duplicates")
	cf := bindConfigFlags(fs, "DATABASE_URL")
	n := fs.Int("events", 200000, "events to ingest")
	customers := fs.Int("customers", 2000, "distinct customers")
	batch := fs.Int("batch", 1000, "events per request")
	conc := fs.Int("concurrency", 4, "requests in flight")
	watched := fs.Int("watched", 100, "customers with a watch level (signals are counted)")
	keep := fs.Bool("keep", false, "keep the benchmark schema")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the fresh ingest to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	db, err := openBenchDB(ctx, cfg, int32(*conc+4), *keep)
	if err != nil {
		return err
	}
	defer db.close()
	st := db.st
	now := time.Now().UTC()
	for _, m := range benchMeters() {
		if _, _, err := st.CreateMeter(ctx, m, now.Add(-cfg.MaxEventLateness)); err != nil {
			return err
		}
	}
	for i := range *watched {
		lvl := map[string]decimal.Decimal{"tokens": decimal.NewFromInt(int64(rng0(i) % 200000))}
		if err := st.SetWatchLevels(ctx, fmt.Sprintf("cust_%05d", i), now.Add(-24*time.Hour), lvl); err != nil {
			return err
		}
	}
	key, _, err := st.CreateAPIKey(ctx, "bench")
	if err != nil {
		return err
	}

	fmt.Printf("generating %d events for %d customers (%d meters)...\n", *n, *customers, len(benchMeters()))
	evs := genEvents(rand.New(rand.NewPCG(1, 2)), randomHex(4), *n, *customers, now)
	var bodies [][]byte
	for lo := 0; lo < len(evs); lo += *batch {
		b, err := json.Marshal(map[string]any{"events": evs[lo:min(lo+*batch, len(evs))]})
		if err != nil {
			return err
		}
		bodies = append(bodies, b)
	}

	tc := &countingTemporal{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: starter.New(st, tc, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler()}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
	defer srv.Shutdown(context.Background())
	url := "http://" + ln.Addr().String() + "/v1/events"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc}}

	post := func() (time.Duration, int, int, error) {
		var next atomic.Int64
		var accepted, dups atomic.Int64
		var firstErr error
		var once sync.Once
		var wg sync.WaitGroup
		start := time.Now()
		for range *conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= len(bodies) {
						return
					}
					a, d, err := postBatch(ctx, hc, url, key, bodies[i])
					if err != nil {
						once.Do(func() { firstErr = err })
						return
					}
					accepted.Add(int64(a))
					dups.Add(int64(d))
				}
			}()
		}
		wg.Wait()
		return time.Since(start), int(accepted.Load()), int(dups.Load()), firstErr
	}

	fmt.Printf("ingest: %d events in batches of %d, %d in flight, through POST /v1/events on %s\n", *n, *batch, *conc, ln.Addr())
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	freshDur, acc, dups, err := post()
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	fresh := float64(acc) / freshDur.Seconds()
	fmt.Printf("  fresh:    %8d accepted, %d duplicates in %v = %.0f events/s\n", acc, dups, freshDur.Round(time.Millisecond), fresh)
	if acc != *n {
		return fmt.Errorf("fresh ingest accepted %d events, want %d", acc, *n)
	}
	// The background compactor merges pending rollups and checks watch
	// levels a fraction of a second behind ingest; wait for it to finish.
	lagStart := time.Now()
	if _, err := st.CompactRollups(ctx); err != nil {
		return err
	}
	fmt.Printf("            compaction caught up %v after the last batch (usage-crossed signals sent: %d)\n",
		time.Since(lagStart).Round(time.Millisecond), tc.signals.Load())

	before, err := tableRows(ctx, db)
	if err != nil {
		return err
	}
	replayDur, acc, dups, err := post()
	if err != nil {
		return err
	}
	after, err := tableRows(ctx, db)
	if err != nil {
		return err
	}
	replay := float64(dups) / replayDur.Seconds()
	fmt.Printf("  replay:   %8d accepted, %d duplicates in %v = %.0f events/s (%.2fx fresh)\n", acc, dups, replayDur.Round(time.Millisecond), replay, replay/fresh)
	fmt.Printf("            table growth: events %+d rows, event_ids %+d rows, events counted in rollups %+d, unique keys %+d\n",
		after[0]-before[0], after[1]-before[1], after[2]-before[2], after[3]-before[3])

	copyDur, err := copyBaseline(ctx, db, evs, *batch, *conc)
	if err != nil {
		return err
	}
	base := float64(len(evs)) / copyDur.Seconds()
	fmt.Printf("  baseline: raw pgx CopyFrom into a bare copy of events (no index, no dedup, no rollups), same batches and concurrency: %v = %.0f events/s\n",
		copyDur.Round(time.Millisecond), base)
	fmt.Printf("  ratio:    API / CopyFrom = %.2fx\n", fresh/base)
	return nil
}

func rng0(i int) int { return (i*7919 + 13) * 104729 }

// postBatch sends one batch and returns its accepted and duplicate counts.
func postBatch(ctx context.Context, hc *http.Client, url, key string, body []byte) (int, int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("POST /v1/events: %d %s", resp.StatusCode, raw)
	}
	var out struct{ Accepted, Duplicates int }
	if err := json.Unmarshal(raw, &out); err != nil {
		return 0, 0, err
	}
	return out.Accepted, out.Duplicates, nil
}

// tableRows counts events, event ids, the events the rollups hold and the
// unique-count keys, after merging all pending rollups.
func tableRows(ctx context.Context, db *benchDB) ([4]int64, error) {
	var r [4]int64
	if _, err := db.st.CompactRollups(ctx); err != nil {
		return r, err
	}
	err := db.st.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM event_ids),
		(SELECT coalesce(sum(count), 0)::bigint FROM rollups), (SELECT count(*) FROM rollup_unique_keys)`).Scan(&r[0], &r[1], &r[2], &r[3])
	return r, err
}

// copyBaseline copies the events into a bare table like events with pgx
// CopyFrom, in the same batches and concurrency as the API run.
func copyBaseline(ctx context.Context, db *benchDB, evs []benchEvent, batch, conc int) (time.Duration, error) {
	pool := db.st.Pool()
	if _, err := pool.Exec(ctx, `CREATE TABLE events_bare (LIKE events INCLUDING DEFAULTS)`); err != nil {
		return 0, err
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo := int(next.Add(int64(batch)) - int64(batch))
				if lo >= len(evs) {
					return
				}
				part := evs[lo:min(lo+batch, len(evs))]
				_, err := pool.CopyFrom(ctx, pgx.Identifier{"events_bare"}, []string{"id", "customer_id", "name", "ts", "properties"},
					pgx.CopyFromSlice(len(part), func(i int) ([]any, error) {
						e := part[i]
						return []any{e.ID, e.CustomerID, e.Name, e.Timestamp, []byte(e.Properties)}, nil
					}))
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), firstErr
}
