package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/billcycle/billcycle/internal/testenv"
	"github.com/billcycle/billcycle/store"
)

func TestClaimNoticeOncePerKey(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	n := store.Notice{DedupeKey: "alert/a1/acme/2026-11-01", CustomerID: "acme", Kind: "alert", Channel: store.ChannelEmail,
		Recipient: "billing@acme.test", Subject: "Usage alert", Body: "You used 1,000 calls", Data: map[string]any{"meter": "calls"}}

	got, created, err := s.ClaimNotice(ctx, n)
	if err != nil || !created || got.Status != store.NoticePending || got.Delivered() {
		t.Fatalf("first ClaimNotice = %+v, %v, %v; want a created pending notice", got, created, err)
	}
	// A crash here (claimed, never finished) leaves the row pending: the
	// retry finds it undelivered and must send again.
	again, created, err := s.ClaimNotice(ctx, n)
	if err != nil || created || again.Delivered() || again.Data["meter"] != "calls" {
		t.Fatalf("reclaim of pending notice = %+v, %v, %v; want the existing undelivered notice", again, created, err)
	}
	if err := s.FinishNotice(ctx, n.DedupeKey, store.NoticePending, "", "status 429"); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishNotice(ctx, n.DedupeKey, store.NoticeSent, "msg-1", ""); err != nil {
		t.Fatal(err)
	}
	n.Subject = "changed"
	done, created, err := s.ClaimNotice(ctx, n)
	if err != nil || created || !done.Delivered() || done.Subject != "Usage alert" {
		t.Fatalf("ClaimNotice after send = %+v, %v, %v; want the delivered original", done, created, err)
	}
	if done.Attempts != 2 || done.ProviderMessageID != "msg-1" || done.SentAt == nil || done.LastError != "" {
		t.Errorf("after a retryable failure and a send: attempts %d, id %q, sent_at %v, last_error %q; want 2, msg-1, set, empty",
			done.Attempts, done.ProviderMessageID, done.SentAt, done.LastError)
	}
	// A late failure report (a duplicate attempt) must not undo the send.
	if err := s.FinishNotice(ctx, n.DedupeKey, store.NoticeFailed, "", "late"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Notice(ctx, n.DedupeKey); got.Status != store.NoticeSent {
		t.Errorf("status after a late failure = %q, want sent", got.Status)
	}
	if err := s.FinishNotice(ctx, "nope", store.NoticeSent, "", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FinishNotice(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.FinishNotice(ctx, n.DedupeKey, "lost", "", ""); err == nil {
		t.Errorf("FinishNotice with status lost = nil, want an error")
	}
}

func TestNoticesListTheOutbox(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	for _, n := range []store.Notice{
		{DedupeKey: "k1", CustomerID: "acme", Kind: "alert", Channel: store.ChannelOutbox, Subject: "one", Body: "b"},
		{DedupeKey: "k2", CustomerID: "acme", Kind: "invoice", Channel: store.ChannelOutbox, Subject: "two", Body: "b"},
		{DedupeKey: "k3", CustomerID: "beta", Kind: "alert", Channel: store.ChannelOutbox, Subject: "three", Body: "b"},
	} {
		if _, _, err := s.ClaimNotice(ctx, n); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishNotice(ctx, n.DedupeKey, store.NoticeOutbox, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		filter store.NoticeFilter
		want   []string
	}{
		{store.NoticeFilter{CustomerID: "acme"}, []string{"k1", "k2"}},
		{store.NoticeFilter{CustomerID: "acme", Kind: "alert"}, []string{"k1"}},
		{store.NoticeFilter{Kind: "alert"}, []string{"k1", "k3"}},
		{store.NoticeFilter{CustomerID: "nobody"}, nil},
		{store.NoticeFilter{Limit: 2}, []string{"k1", "k2"}},
	}
	for _, tt := range tests {
		t.Run(tt.filter.CustomerID+"/"+tt.filter.Kind, func(t *testing.T) {
			got, err := s.Notices(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, n := range got {
				keys = append(keys, n.DedupeKey)
				if n.Status != store.NoticeOutbox || n.SentAt == nil {
					t.Errorf("notice %s status %q sent_at %v, want outbox with a time", n.DedupeKey, n.Status, n.SentAt)
				}
			}
			if !slices.Equal(keys, tt.want) {
				t.Errorf("Notices(%+v) = %v, want %v", tt.filter, keys, tt.want)
			}
		})
	}
}

func TestClaimAccessChangeOncePerChange(t *testing.T) {
	ctx := context.Background()
	s := testenv.Store(t)
	if _, _, err := s.CreateCustomer(ctx, store.Customer{ID: "acme", Email: "a@acme.test"}); err != nil {
		t.Fatal(err)
	}
	revoke := store.Notice{DedupeKey: "access/acme/1", CustomerID: "acme", Kind: "access", Channel: store.ChannelWebhook}

	n, changed, err := s.ClaimAccessChange(ctx, revoke, false, "usage limit")
	if err != nil || !changed || n.Status != store.NoticePending || n.Data["changed_at"] == nil {
		t.Fatalf("first revoke = %+v, %v, %v; want changed with a pending notice carrying changed_at", n, changed, err)
	}
	again, changed, err := s.ClaimAccessChange(ctx, revoke, false, "usage limit")
	if err != nil || !changed || again.Data["changed_at"] != n.Data["changed_at"] {
		t.Errorf("retried revoke = %+v, %v, %v; want changed with the same notice", again, changed, err)
	}
	other := revoke
	other.DedupeKey = "access/acme/2"
	if n, changed, err := s.ClaimAccessChange(ctx, other, false, "again"); err != nil || changed || n.DedupeKey != "" {
		t.Errorf("revoke of a revoked customer = %+v, %v, %v; want unchanged and no notice", n, changed, err)
	}
	if _, err := s.Notice(ctx, "access/acme/2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("notice of an unchanged access = %v, want none (ErrNotFound)", err)
	}
	a, err := s.AccessState(ctx, "acme")
	if err != nil || a.Access != "revoked" || a.Reason != "usage limit" || a.ChangedAt == nil {
		t.Errorf("AccessState = %+v, %v; want revoked for usage limit with a time", a, err)
	}
	ghost := revoke
	ghost.DedupeKey, ghost.CustomerID = "access/ghost/1", "ghost"
	if _, _, err := s.ClaimAccessChange(ctx, ghost, false, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ClaimAccessChange(unknown customer) = %v, want ErrNotFound", err)
	}
	if _, err := s.Notice(ctx, "access/ghost/1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("notice for an unknown customer was kept: %v", err)
	}
	if _, err := s.AccessState(ctx, "ghost"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AccessState(unknown) = %v, want ErrNotFound", err)
	}
}
