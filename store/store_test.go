package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/billcycle/billcycle/internal/testenv"
	"github.com/billcycle/billcycle/store"
)

func TestMigrateIsRepeatable(t *testing.T) {
	s := testenv.Store(t) // migrated once already
	again, err := s.Migrate(context.Background())
	if err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if len(again) != 0 {
		t.Errorf("second Migrate applied %v, want nothing", again)
	}
}

func TestCreateCustomerIsIdempotent(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	in := store.Customer{ID: "c1", Email: "a@example.com", Name: "Acme", Plan: "pro", Metadata: map[string]string{"tier": "gold"}}
	got, created, err := s.CreateCustomer(ctx, in)
	if err != nil || !created {
		t.Fatalf("first CreateCustomer = %v, %v; want created", created, err)
	}
	if got.Email != in.Email || got.Metadata["tier"] != "gold" || got.Access != "granted" {
		t.Errorf("stored customer = %+v", got)
	}
	in.Email = "other@example.com"
	got, created, err = s.CreateCustomer(ctx, in)
	if err != nil || created {
		t.Fatalf("repeat CreateCustomer = %v, %v; want existing", created, err)
	}
	if got.Email != "a@example.com" {
		t.Errorf("repeat signup changed email to %q", got.Email)
	}
	if _, err := s.Customer(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Customer(nobody) error = %v, want ErrNotFound", err)
	}
}

func TestAccessChangesOnce(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	if _, _, err := s.CreateCustomer(ctx, store.Customer{ID: "c1", Email: "a@example.com"}); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		changed, err := s.SetAccess(ctx, "c1", false, "usage limit")
		if err != nil || changed != want {
			t.Errorf("SetAccess(revoke) #%d = %v, %v; want %v", i+1, changed, err, want)
		}
	}
	c, _ := s.Customer(ctx, "c1")
	if c.Access != "revoked" || c.AccessReason != "usage limit" {
		t.Errorf("after revoke: access %q reason %q", c.Access, c.AccessReason)
	}
}

func TestAPIKeysAreHashed(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	key, rec, err := s.CreateAPIKey(ctx, "ci")
	if err != nil {
		t.Fatal(err)
	}
	var stored int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE hash::text LIKE '%'||$1||'%' OR prefix = $1`, key).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 0 {
		t.Errorf("the plain key is stored")
	}
	got, err := s.AuthenticateAPIKey(ctx, key)
	if err != nil || got.ID != rec.ID {
		t.Fatalf("AuthenticateAPIKey(key) = %+v, %v; want id %d", got, err, rec.ID)
	}
	if _, err := s.AuthenticateAPIKey(ctx, key+"x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("wrong key error = %v, want ErrNotFound", err)
	}
	if err := s.RevokeAPIKey(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateAPIKey(ctx, key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoked key error = %v, want ErrNotFound", err)
	}
}
