package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/internal/testenv"
	"github.com/billcycle/billcycle/store"
)

func newAlert(id, meter, customer string, filter map[string]string) billing.Alert {
	return billing.Alert{ID: id, Meter: meter, CustomerID: customer, CustomerFilter: filter,
		Threshold: decimal.RequireFromString("1000.5"), Direction: billing.Above, Actions: []billing.AlertAction{billing.ActionEmail}}
}

func seedCustomers(t *testing.T, s *store.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, _, err := s.CreateCustomer(context.Background(), store.Customer{ID: id, Email: id + "@example.test"}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCreateAlertRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	seedCustomers(t, s, "acme")
	in := newAlert("a1", "rate_limit_remaining", "acme", nil)
	in.Direction = billing.Below
	in.Window = billing.Duration(24 * time.Hour)
	in.Cooldown = billing.Duration(90 * time.Minute)
	in.Actions = []billing.AlertAction{billing.ActionNotifySales, billing.ActionRevokeAccess}
	got, err := s.CreateAlert(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if got.CreatedAt.IsZero() {
		t.Errorf("CreateAlert left CreatedAt zero")
	}
	read, err := s.Alert(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	in.CreatedAt = got.CreatedAt
	if !read.Threshold.Equal(in.Threshold) || read.Window != in.Window || read.Cooldown != in.Cooldown ||
		read.Direction != in.Direction || !slices.Equal(read.Actions, in.Actions) || read.CustomerID != "acme" ||
		!read.CreatedAt.Equal(in.CreatedAt) || read.Archived {
		t.Errorf("Alert(a1) = %+v, want %+v", read, in)
	}
	if _, err := s.CreateAlert(ctx, in); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateAlert(same id) = %v, want ErrConflict", err)
	}
	if _, err := s.CreateAlert(ctx, newAlert("a2", "calls", "ghost", nil)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateAlert(unknown customer) = %v, want ErrNotFound", err)
	}
	if _, err := s.Alert(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Alert(nope) = %v, want ErrNotFound", err)
	}
	archived, err := s.ArchiveAlert(ctx, "a1")
	if err != nil || !archived.Archived {
		t.Fatalf("ArchiveAlert = %+v, %v; want archived", archived, err)
	}
	if again, err := s.ArchiveAlert(ctx, "a1"); err != nil || !again.Archived {
		t.Errorf("second ArchiveAlert = %+v, %v; want archived, no error", again, err)
	}
	if _, err := s.ArchiveAlert(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ArchiveAlert(nope) = %v, want ErrNotFound", err)
	}
}

func TestAlertLimitPerMeterAndCustomer(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	seedCustomers(t, s, "acme", "beta")
	for i := range billing.MaxAlertsPerMeter {
		if _, err := s.CreateAlert(ctx, newAlert(fmt.Sprintf("acme-%d", i), "calls", "acme", nil)); err != nil {
			t.Fatalf("alert %d: %v", i+1, err)
		}
	}
	tests := []struct {
		name  string
		alert billing.Alert
		want  error
	}{
		{"one too many", newAlert("acme-x", "calls", "acme", nil), store.ErrAlertLimit},
		{"other meter", newAlert("acme-tokens", "tokens", "acme", nil), nil},
		{"other customer", newAlert("beta-1", "calls", "beta", nil), nil},
		{"all customers", newAlert("all-1", "calls", "", nil), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.CreateAlert(ctx, tt.alert); !errors.Is(err, tt.want) {
				t.Errorf("CreateAlert(%s) = %v, want %v", tt.alert.ID, err, tt.want)
			}
		})
	}
	if _, err := s.ArchiveAlert(ctx, "acme-0"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAlert(ctx, newAlert("acme-y", "calls", "acme", nil)); err != nil {
		t.Errorf("CreateAlert after archiving one = %v, want room for it", err)
	}
	live, err := s.Alerts(ctx, store.AlertFilter{CustomerID: "acme", Meter: "calls"})
	if err != nil || len(live) != billing.MaxAlertsPerMeter {
		t.Errorf("Alerts(acme, calls) = %d alerts, %v; want %d", len(live), err, billing.MaxAlertsPerMeter)
	}
	all, err := s.Alerts(ctx, store.AlertFilter{CustomerID: "acme", Meter: "calls", IncludeArchived: true})
	if err != nil || len(all) != billing.MaxAlertsPerMeter+1 {
		t.Errorf("Alerts(acme, calls, archived too) = %d alerts, %v; want %d", len(all), err, billing.MaxAlertsPerMeter+1)
	}
}

func TestAlertsFor(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	seedCustomers(t, s, "acme", "beta")
	for _, a := range []billing.Alert{
		newAlert("own", "calls", "acme", nil),
		newAlert("beta-own", "calls", "beta", nil),
		newAlert("everyone", "calls", "", nil),
		newAlert("not-enterprise", "calls", "", map[string]string{"plan": "!enterprise"}),
		newAlert("smb-eu", "calls", "", map[string]string{"segment": "smb", "region": "eu"}),
		newAlert("archived", "calls", "", nil),
	} {
		if _, err := s.CreateAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ArchiveAlert(ctx, "archived"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		customer string
		metadata map[string]string
		want     []string
	}{
		{"acme", nil, []string{"own", "everyone", "not-enterprise"}},
		{"acme", map[string]string{"plan": "enterprise"}, []string{"own", "everyone"}},
		{"acme", map[string]string{"plan": "pro", "segment": "smb", "region": "eu"}, []string{"own", "everyone", "not-enterprise", "smb-eu"}},
		{"acme", map[string]string{"segment": "smb", "region": "us"}, []string{"own", "everyone", "not-enterprise"}},
		{"beta", map[string]string{"plan": "enterprise", "segment": "smb", "region": "eu"}, []string{"beta-own", "everyone", "smb-eu"}},
		{"gamma", map[string]string{"plan": "enterprise"}, []string{"everyone"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %v", tt.customer, tt.metadata), func(t *testing.T) {
			got, err := s.AlertsFor(ctx, tt.customer, tt.metadata)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, a := range got {
				ids = append(ids, a.ID)
			}
			slices.Sort(ids)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(ids, want) {
				t.Errorf("AlertsFor(%s, %v) = %v, want %v", tt.customer, tt.metadata, ids, want)
			}
		})
	}
}

func TestMeterKnown(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	var exists bool
	if err := s.Pool().QueryRow(ctx, `SELECT to_regclass('meters') IS NOT NULL`).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		if _, checked, err := s.MeterKnown(ctx, "calls"); err != nil || checked {
			t.Errorf("MeterKnown without a meters table: checked = %v, %v; want false", checked, err)
		}
		if _, err := s.Pool().Exec(ctx, `CREATE TABLE meters (slug text PRIMARY KEY, definition jsonb NOT NULL, archived_at timestamptz)`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, `INSERT INTO meters (slug, definition) VALUES ('calls', '{}'), ('old', '{}')`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE meters SET archived_at = now() WHERE slug = 'old'`); err != nil {
		t.Fatal(err)
	}
	for slug, want := range map[string]bool{"calls": true, "old": false, "nope": false} {
		known, checked, err := s.MeterKnown(ctx, slug)
		if err != nil || !checked || known != want {
			t.Errorf("MeterKnown(%s) = %v, %v, %v; want %v, checked", slug, known, checked, err, want)
		}
	}
}
