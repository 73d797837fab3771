package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/billcycle/billcycle/billing/meter"
	"github.com/billcycle/billcycle/config"
	"github.com/billcycle/billcycle/store"
)

// benchDB is a fresh, migrated schema for one benchmark run, dropped at the
// end unless kept.
type benchDB struct {
	st     *store.Store
	url    string
	schema string
	keep   bool
}

func openBenchDB(ctx context.Context, cfg config.Config, conns int32, keep bool) (*benchDB, error) {
	if err := store.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	schema := "bench_" + randomHex(4)
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return nil, fmt.Errorf("create schema %s: %w", schema, err)
	}
	pc, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	pc.ConnConfig.RuntimeParams["search_path"] = schema
	pc.MaxConns = conns
	st, err := store.OpenConfig(ctx, pc)
	if err != nil {
		return nil, err
	}
	db := &benchDB{st: st, url: cfg.DatabaseURL, schema: schema, keep: keep}
	if _, err := st.Migrate(ctx); err != nil {
		db.close()
		return nil, err
	}
	return db, nil
}

func (db *benchDB) close() {
	db.st.Close()
	if db.keep {
		fmt.Printf("kept schema %s\n", db.schema)
		return
	}
	ctx := context.Background()
	if conn, err := pgx.Connect(ctx, db.url); err == nil {
		_, _ = conn.Exec(ctx, "DROP SCHEMA "+db.schema+" CASCADE")
		conn.Close(ctx)
	}
}

// benchMeters are the meters of the benchmarks: several per event name,
// with filters on nested properties, as a real API company would define.
func benchMeters() []meter.Meter {
	num := func(s string) json.Number { return json.Number(s) }
	return []meter.Meter{
		{Slug: "api_calls", Name: "API calls", EventName: "api_call", Aggregation: meter.AggregationCount, Unit: "calls",
			Filter: &meter.Filter{Conditions: []meter.Condition{{Property: "response.status", Operator: meter.OpLess, Value: num("500")}}}},
		{Slug: "tokens", Name: "Tokens", EventName: "api_call", Aggregation: meter.AggregationSum, Property: "tokens", Unit: "tokens",
			Filter: &meter.Filter{Logic: meter.LogicOr, Conditions: []meter.Condition{{Property: "model", Operator: meter.OpEquals, Value: "large"}},
				Groups: []meter.Filter{{Conditions: []meter.Condition{
					{Property: "model", Operator: meter.OpContains, Value: "small"},
					{Property: "tokens", Operator: meter.OpGreater, Value: num("0")}}}}}},
		{Slug: "peak_latency", Name: "Peak latency", EventName: "api_call", Aggregation: meter.AggregationMax, Property: "response.latency_ms", Unit: "ms"},
		{Slug: "active_users", Name: "Active users", EventName: "api_call", Aggregation: meter.AggregationUniqueCount, Property: "user_id", Unit: "users"},
		{Slug: "storage", Name: "Storage", EventName: "storage_snapshot", Aggregation: meter.AggregationLast, Property: "gb", Unit: "GB"},
	}
}

// percentiles returns the p50 and p95 of ds.
func percentiles(ds []time.Duration) (p50, p95 time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*95/100)]
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
