package activities

import (
	"context"
	"errors"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/billcycle/billcycle/billing"
)

type fakeDunningStore struct {
	policies map[string]billing.Policy
	err      error
}

func (f fakeDunningStore) DunningPolicy(_ context.Context, planID string) (billing.Policy, bool, error) {
	p, ok := f.policies[planID]
	return p, ok, f.err
}

func (f fakeDunningStore) InvoiceStatus(context.Context, string, string) (string, error) {
	return "paid", f.err
}

type fakeCollector struct {
	calls [][2]string
	err   error
}

func (f *fakeCollector) MarkUncollectible(_ context.Context, id, key string) error {
	f.calls = append(f.calls, [2]string{id, key})
	return f.err
}

func TestLoadDunningPolicy(t *testing.T) {
	own := billing.Policy{ID: "pro", Steps: []billing.Step{{Action: billing.ActionSuspendAccess}}}
	a := &DunningActivities{Store: fakeDunningStore{policies: map[string]billing.Policy{"pro": own}}}
	tests := []struct{ plan, want string }{{"pro", "pro"}, {"free", "default"}, {"", "default"}}
	for _, tt := range tests {
		got, err := a.LoadDunningPolicy(context.Background(), tt.plan)
		if err != nil || got.ID != tt.want {
			t.Errorf("LoadDunningPolicy(%q) = %q, %v; want %q", tt.plan, got.ID, err, tt.want)
		}
	}
	a.Store = fakeDunningStore{err: errors.New("db down")}
	if _, err := a.LoadDunningPolicy(context.Background(), "pro"); err == nil {
		t.Error("LoadDunningPolicy with the store down = nil error, want one (retried)")
	}
}

func TestMarkInvoiceUncollectible(t *testing.T) {
	c := &fakeCollector{}
	a := &DunningActivities{Collector: c}
	if err := a.MarkInvoiceUncollectible(context.Background(), MarkUncollectibleInput{DedupeKey: "dunning/i/step-5", StripeInvoiceID: "in_1"}); err != nil {
		t.Fatal(err)
	}
	if len(c.calls) != 1 || c.calls[0] != [2]string{"in_1", "dunning/i/step-5"} {
		t.Errorf("collector calls = %v, want in_1 with the step's dedupe key as idempotency key", c.calls)
	}
	var appErr *temporal.ApplicationError
	err := a.MarkInvoiceUncollectible(context.Background(), MarkUncollectibleInput{DedupeKey: "k"})
	if !errors.As(err, &appErr) || !appErr.NonRetryable() {
		t.Errorf("without a Stripe id: error %v, want non-retryable", err)
	}
	c.err = errors.Join(ErrPermanent, errors.New("invoice is void"))
	if err := a.MarkInvoiceUncollectible(context.Background(), MarkUncollectibleInput{DedupeKey: "k", StripeInvoiceID: "in_2"}); !errors.As(err, &appErr) || !appErr.NonRetryable() {
		t.Errorf("permanent Stripe error: %v, want non-retryable", err)
	}
	c.err = errors.New("stripe 503")
	if err := a.MarkInvoiceUncollectible(context.Background(), MarkUncollectibleInput{DedupeKey: "k", StripeInvoiceID: "in_3"}); err == nil || errors.As(err, &appErr) {
		t.Errorf("transient Stripe error: %v, want a plain (retryable) error", err)
	}
}
