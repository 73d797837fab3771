package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/billcycle/billcycle/store"
)

// benchQuery fills events and rollups straight from SQL (generate_series)
// and times a customer's cycle totals as the billing workflow reads them.
func benchQuery(ctx context.Context, args []string) error {
	fs := flagSet("bench query", "time a customer's cycle total at a given number of stored events")
	cf := bindConfigFlags(fs, "DATABASE_URL")
	n := fs.Int("events", 1000000, "stored events to generate (e.g. 10000000)")
	customers := fs.Int("customers", 1000, "distinct customers")
	days := fs.Int("days", 62, "days of event time the events span, ending now")
	samples := fs.Int("samples", 2000, "timed queries per kind")
	keep := fs.Bool("keep", false, "keep the benchmark schema")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	db, err := openBenchDB(ctx, cfg, 8, *keep)
	if err != nil {
		return err
	}
	defer db.close()
	st, pool := db.st, db.st.Pool()
	now := time.Now().UTC().Truncate(time.Hour)
	start := now.AddDate(0, 0, -*days)
	for _, m := range benchMeters() {
		if _, _, err := st.CreateMeter(ctx, m, start); err != nil {
			return err
		}
	}
	for t := start; !t.After(now.AddDate(0, 1, 0)); t = t.AddDate(0, 1, 0) {
		if _, err := pool.Exec(ctx, `SELECT events_partition_for($1)`, t); err != nil {
			return err
		}
	}

	fmt.Printf("generating %d events over %d days for %d customers with generate_series...\n", *n, *days, *customers)
	genStart := time.Now()
	span := now.Sub(start).Seconds()
	const chunk = 1000000
	for lo := 0; lo < *n; lo += chunk {
		hi := min(lo+chunk, *n)
		_, err := pool.Exec(ctx, `INSERT INTO events (id, customer_id, name, ts, properties)
			SELECT 'evt_' || g, 'cust_' || lpad(((g * 7919) % $3)::text, 5, '0'), 'api_call',
				$4::timestamptz + make_interval(secs => g * $5::float8 / $6),
				jsonb_build_object('model', (ARRAY['large','small','small-v2','embed'])[g % 4 + 1], 'tokens', g % 4000,
					'user_id', 'u_' || (g % 200), 'response', jsonb_build_object('status', CASE WHEN g % 11 = 0 THEN 503 ELSE 200 END, 'latency_ms', g % 2000))
			FROM generate_series($1::bigint, $2::bigint - 1) AS g`, lo, hi, *customers, start, span, *n)
		if err != nil {
			return fmt.Errorf("generate events: %w", err)
		}
		fmt.Printf("  %d events (%v)\n", hi, time.Since(genStart).Round(time.Second))
	}
	// The rollups the ingest path would have written for the count and sum
	// meters, with the same filters (api_calls: status < 500; tokens: model
	// large, or containing "small" with tokens > 0).
	_, err = pool.Exec(ctx, `
		INSERT INTO rollups (customer_id, meter, bucket, count, sum)
		SELECT customer_id, 'api_calls', date_trunc('hour', ts, 'UTC'), count(*), count(*)
		FROM events WHERE (properties #>> '{response,status}')::numeric < 500 GROUP BY 1, 3;
		INSERT INTO rollups (customer_id, meter, bucket, count, sum, min, max, last_value, last_at, last_id)
		SELECT customer_id, 'tokens', date_trunc('hour', ts, 'UTC'), count(*), sum(tok), min(tok), max(tok),
			(array_agg(tok ORDER BY ts DESC, id DESC))[1], max(ts), (array_agg(id ORDER BY ts DESC, id DESC))[1]
		FROM (SELECT customer_id, ts, id, (properties ->> 'tokens')::numeric AS tok FROM events
			WHERE properties ->> 'model' = 'large' OR (properties ->> 'model' LIKE '%small%' AND (properties ->> 'tokens')::numeric > 0)) e
		GROUP BY 1, 3;
		ANALYZE`)
	if err != nil {
		return fmt.Errorf("generate rollups: %w", err)
	}
	var rollups int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM rollups`).Scan(&rollups); err != nil {
		return err
	}
	fmt.Printf("  %d rollup rows; data ready in %v\n", rollups, time.Since(genStart).Round(time.Second))

	rng := rand.New(rand.NewPCG(3, 4))
	cycleFrom := time.Date(start.Year(), start.Month(), start.Day()+max(1, *days-31), 0, 0, 0, 0, time.UTC)
	cycleTo := cycleFrom.AddDate(0, 0, 30)
	offset := 37*time.Minute + 13*time.Second // a signup anchor that is not on the hour
	customer := func() string { return fmt.Sprintf("cust_%05d", rng.IntN(*customers)) }
	kinds := []struct {
		name string
		run  func() error
	}{
		{"MeterTotals, cycle on whole hours (all 5 meters)", func() error {
			_, err := st.MeterTotals(ctx, customer(), cycleFrom, cycleTo)
			return err
		}},
		{"MeterTotals, cycle at 00:37:13 (partial hours from raw events)", func() error {
			_, err := st.MeterTotals(ctx, customer(), cycleFrom.Add(offset), cycleTo.Add(offset))
			return err
		}},
		{"Usage of one meter (tokens), total + monthly series", func() error {
			_, err := st.Usage(ctx, "tokens", customer(), cycleFrom, cycleTo, store.WindowMonth)
			return err
		}},
	}
	fmt.Printf("query: %d samples each, cycle %s..%s, random customers, %d stored events\n", *samples, cycleFrom.Format(time.DateOnly), cycleTo.Format(time.DateOnly), *n)
	for _, k := range kinds {
		for range min(100, *samples) { // warm the pool and caches
			if err := k.run(); err != nil {
				return err
			}
		}
		ds := make([]time.Duration, 0, *samples)
		for range *samples {
			t0 := time.Now()
			if err := k.run(); err != nil {
				return err
			}
			ds = append(ds, time.Since(t0))
		}
		p50, p95 := percentiles(ds)
		fmt.Printf("  %-62s p50 %7.2f ms   p95 %7.2f ms\n", k.name, ms(p50), ms(p95))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
