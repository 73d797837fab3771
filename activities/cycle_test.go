package activities

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"go.temporal.io/sdk/temporal"

	"github.com/billcycle/billcycle/billing"
)

type fakeSubs struct {
	sub   *billing.Subscription
	th    billing.Thresholds
	plans map[string]billing.Plan
	saves int
}

func (f *fakeSubs) Subscription(context.Context, string) (billing.Subscription, billing.Thresholds, error) {
	if f.sub == nil {
		return billing.Subscription{}, billing.Thresholds{}, ErrNoSubscription
	}
	return *f.sub, f.th, nil
}

func (f *fakeSubs) Plan(_ context.Context, id string) (billing.Plan, error) {
	p, ok := f.plans[id]
	if !ok {
		return billing.Plan{}, ErrUnknownPlan
	}
	return p, nil
}

func (f *fakeSubs) SaveSubscription(_ context.Context, sub billing.Subscription, th billing.Thresholds) error {
	f.sub, f.th = &sub, th
	f.saves++
	return nil
}

func cyclePlan(id string, cur billing.Currency, fee int64) billing.Plan {
	return billing.Plan{ID: id, Name: id, Currency: cur, Interval: billing.Interval{Unit: billing.Month, Count: 1},
		Products: []billing.Product{{ID: "p", Name: "P", FlatFee: fee,
			Prices: []billing.MeterPrice{{Meter: "requests", Model: billing.PerUnit, UnitPrice: decimal.NewFromInt(1)}}}}}
}

func TestChangePlan(t *testing.T) {
	at := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	old := billing.Subscription{CustomerID: "c1", PlanID: "small", Anchor: at.AddDate(0, -1, 0), Status: billing.Active, Currency: "usd"}
	tests := []struct {
		name     string
		sub      *billing.Subscription
		th       billing.Thresholds
		plan     string
		wantType string // non-retryable error type, or ""
		wantTh   billing.Thresholds
	}{
		{"change keeps valid thresholds", &old, billing.Thresholds{AmountGTE: 5000}, "big", "", billing.Thresholds{AmountGTE: 5000}},
		{"change drops thresholds invalid on the new plan", &old, billing.Thresholds{AmountGTE: 1500}, "big", "", billing.Thresholds{}},
		{"no subscription yet: one is created", nil, billing.Thresholds{}, "big", "", billing.Thresholds{}},
		{"unknown plan", &old, billing.Thresholds{}, "nope", ErrTypeUnknownPlan, billing.Thresholds{}},
		{"other currency", &old, billing.Thresholds{}, "euro", ErrTypeInvalidChange, billing.Thresholds{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSubs{sub: tt.sub, th: tt.th, plans: map[string]billing.Plan{
				"big": cyclePlan("big", "usd", 2000), "euro": cyclePlan("euro", "eur", 0)}}
			a := &CycleActivities{Subscriptions: f}
			info, err := a.ChangePlan(context.Background(), ChangePlanInput{CustomerID: "c1", PlanID: tt.plan, At: at})
			var appErr *temporal.ApplicationError
			if tt.wantType != "" {
				if !errors.As(err, &appErr) || appErr.Type() != tt.wantType || !appErr.NonRetryable() || f.saves != 0 {
					t.Fatalf("ChangePlan(%s) = %v (saves %d), want non-retryable %s and nothing saved", tt.plan, err, f.saves, tt.wantType)
				}
				return
			}
			if err != nil {
				t.Fatalf("ChangePlan(%s) = %v", tt.plan, err)
			}
			if f.sub.PlanID != tt.plan || !f.sub.Anchor.Equal(at) || f.sub.Currency != "usd" || f.th.AmountGTE != tt.wantTh.AmountGTE || info.Plan.ID != tt.plan {
				t.Errorf("saved %+v thresholds %+v, want plan %s anchored %v with thresholds %+v", *f.sub, f.th, tt.plan, at, tt.wantTh)
			}
		})
	}
}

func TestSaveThresholds(t *testing.T) {
	f := &fakeSubs{}
	a := &CycleActivities{Subscriptions: f}
	err := a.SaveThresholds(context.Background(), SaveThresholdsInput{CustomerID: "c1", Thresholds: billing.Thresholds{AmountGTE: 10}})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErrTypeNoSubscription {
		t.Errorf("SaveThresholds(no subscription) = %v, want non-retryable %s", err, ErrTypeNoSubscription)
	}
	f.sub = &billing.Subscription{CustomerID: "c1", PlanID: "big"}
	if err := a.SaveThresholds(context.Background(), SaveThresholdsInput{CustomerID: "c1", Thresholds: billing.Thresholds{AmountGTE: 10}}); err != nil || f.th.AmountGTE != 10 {
		t.Errorf("SaveThresholds() = %v, stored %+v; want amount_gte 10", err, f.th)
	}
}
