// Package testenv gives tests the real local services: an isolated PostgreSQL
// schema per test, and the addresses of the Temporal dev server and
// stripe-mock that the test script started. A test whose service is missing
// fails with a message saying how to start it, unless the run allows skipping
// (BILLCYCLE_TEST_ALLOW_SKIP=1) for quick local loops.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/billcycle/billcycle/store"
)

// DefaultDatabaseURL is the local test database when TEST_DATABASE_URL is unset.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DatabaseURL returns TEST_DATABASE_URL, or the local test database.
func DatabaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultDatabaseURL
}

// Store returns a migrated store whose connections all use a fresh schema of
// their own, dropped when the test ends, so tests run in parallel without
// seeing each other's rows.
func Store(t testing.TB) *store.Store {
	t.Helper()
	ctx := context.Background()
	url := DatabaseURL()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		missing(t, "PostgreSQL at "+url+" (start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)", err)
		return nil
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	conn.Close(ctx)

	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 8
	s, err := store.OpenConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		c, err := pgx.Connect(context.Background(), url)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

// TemporalAddress returns the address of a running Temporal dev server
// (TEMPORAL_TEST_ADDRESS, else 127.0.0.1:7233), failing the test when none
// answers.
func TemporalAddress(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("TEMPORAL_TEST_ADDRESS")
	if addr == "" {
		addr = "127.0.0.1:7233"
	}
	if !listening(addr) {
		missing(t, "a Temporal dev server at "+addr+" (bash deploy/test.sh starts one)", nil)
	}
	return addr
}

// StripeMockURL returns the base URL of a running stripe-mock
// (STRIPE_MOCK_URL, else http://127.0.0.1:12111), failing the test when none
// answers.
func StripeMockURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("STRIPE_MOCK_URL")
	if u == "" {
		u = "http://127.0.0.1:12111"
	}
	if !listening(u[len("http://"):]) {
		missing(t, "stripe-mock at "+u+" (bash deploy/test.sh starts one)", nil)
	}
	return u
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func missing(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("BILLCYCLE_TEST_ALLOW_SKIP") == "1" {
		t.Skipf("needs %s: %v", what, err)
	}
	t.Fatalf("needs %s: %v (set BILLCYCLE_TEST_ALLOW_SKIP=1 to skip instead)", what, err)
}
