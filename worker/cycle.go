package worker

import (
	"context"
	"errors"

	sdkworker "go.temporal.io/sdk/worker"

	"github.com/billcycle/billcycle/activities"
	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/store"
)

// registerCycle registers the billing cycle's own activities (plan and
// threshold changes) over the store.
func registerCycle(w sdkworker.Registry, d Deps) {
	w.RegisterActivity(&activities.CycleActivities{Subscriptions: subscriptionStore{d.Store}})
}

// subscriptionStore adapts the store to activities.SubscriptionStore.
type subscriptionStore struct{ s *store.Store }

func (a subscriptionStore) Subscription(ctx context.Context, customerID string) (billing.Subscription, billing.Thresholds, error) {
	sub, th, err := a.s.Subscription(ctx, customerID)
	if errors.Is(err, store.ErrNotFound) {
		err = errors.Join(activities.ErrNoSubscription, err)
	}
	return sub, th, err
}

func (a subscriptionStore) Plan(ctx context.Context, id string) (billing.Plan, error) {
	p, err := a.s.Plan(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		err = errors.Join(activities.ErrUnknownPlan, err)
	}
	return p, err
}

// SaveSubscription replaces the terms and thresholds, keeping the stored
// collection method and due days.
func (a subscriptionStore) SaveSubscription(ctx context.Context, sub billing.Subscription, th billing.Thresholds) error {
	rec, err := a.s.SubscriptionRecord(ctx, sub.CustomerID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	rec.Subscription, rec.Thresholds = sub, th
	_, _, err = a.s.PutSubscription(ctx, rec)
	return err
}
