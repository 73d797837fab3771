package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/billcycle/billcycle/billing"
)

// Error types of the billing-cycle activities' non-retryable errors.
const (
	// ErrTypeUnknownPlan: the plan to change to does not exist.
	ErrTypeUnknownPlan = "UnknownPlan"
	// ErrTypeInvalidChange: the change can never be applied as given (for
	// example a plan in another currency than the subscription).
	ErrTypeInvalidChange = "InvalidChange"
)

// ErrUnknownPlan is returned by a SubscriptionStore for a plan that does not
// exist.
var ErrUnknownPlan = errors.New("unknown plan")

// SubscriptionStore is the part of the store that changes subscriptions.
// Subscription returns ErrNoSubscription for a customer without one.
type SubscriptionStore interface {
	Subscription(ctx context.Context, customerID string) (billing.Subscription, billing.Thresholds, error)
	Plan(ctx context.Context, id string) (billing.Plan, error)
	// SaveSubscription creates or replaces the customer's subscription terms
	// and thresholds, keeping whatever else the store records about it.
	SaveSubscription(ctx context.Context, sub billing.Subscription, th billing.Thresholds) error
}

// CycleActivities are the activities only the BillingCycle workflow uses to
// change what it bills. Workflows refer to its methods through a nil
// *CycleActivities.
type CycleActivities struct {
	Subscriptions SubscriptionStore
}

// ChangePlanInput moves CustomerID to PlanID from At on.
type ChangePlanInput struct {
	CustomerID string    `json:"customer_id"`
	PlanID     string    `json:"plan_id"`
	At         time.Time `json:"at"`
}

// ChangePlan stores the customer's new plan with its billing cycle anchored
// at in.At (a new period starts with the change) and returns the new terms.
// A customer without a subscription gets one, active, in the plan's currency.
// Thresholds that are invalid under the new plan are dropped. Repeating it
// with the same input stores the same thing.
func (a *CycleActivities) ChangePlan(ctx context.Context, in ChangePlanInput) (SubscriptionInfo, error) {
	plan, err := a.Subscriptions.Plan(ctx, in.PlanID)
	if errors.Is(err, ErrUnknownPlan) {
		return SubscriptionInfo{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("change plan of %s: plan %q does not exist", in.CustomerID, in.PlanID), ErrTypeUnknownPlan, err)
	}
	if err != nil {
		return SubscriptionInfo{}, fmt.Errorf("change plan of %s: load plan %s: %w", in.CustomerID, in.PlanID, err)
	}
	sub, th, err := a.Subscriptions.Subscription(ctx, in.CustomerID)
	switch {
	case errors.Is(err, ErrNoSubscription):
		sub = billing.Subscription{CustomerID: in.CustomerID, Status: billing.Active, Currency: plan.Currency}
		th = billing.Thresholds{}
	case err != nil:
		return SubscriptionInfo{}, fmt.Errorf("change plan of %s: %w", in.CustomerID, err)
	case sub.Currency != plan.Currency:
		return SubscriptionInfo{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("change plan of %s: plan %s bills in %s, the subscription in %s", in.CustomerID, plan.ID, plan.Currency, sub.Currency),
			ErrTypeInvalidChange, nil)
	}
	sub.PlanID, sub.Anchor = plan.ID, in.At.UTC()
	if billing.ValidateThresholds(th, plan) != nil {
		th = billing.Thresholds{}
	}
	if err := a.Subscriptions.SaveSubscription(ctx, sub, th); err != nil {
		return SubscriptionInfo{}, fmt.Errorf("change plan of %s: save: %w", in.CustomerID, err)
	}
	return SubscriptionInfo{Subscription: sub, Plan: plan, Thresholds: th}, nil
}

// SaveThresholdsInput replaces CustomerID's billing thresholds.
type SaveThresholdsInput struct {
	CustomerID string             `json:"customer_id"`
	Thresholds billing.Thresholds `json:"thresholds"`
}

// SaveThresholds stores the customer's billing thresholds. A customer without
// a subscription is a non-retryable error of type ErrTypeNoSubscription.
func (a *CycleActivities) SaveThresholds(ctx context.Context, in SaveThresholdsInput) error {
	sub, _, err := a.Subscriptions.Subscription(ctx, in.CustomerID)
	if errors.Is(err, ErrNoSubscription) {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("save thresholds of %s: no subscription", in.CustomerID), ErrTypeNoSubscription, err)
	}
	if err != nil {
		return fmt.Errorf("save thresholds of %s: %w", in.CustomerID, err)
	}
	if err := a.Subscriptions.SaveSubscription(ctx, sub, in.Thresholds); err != nil {
		return fmt.Errorf("save thresholds of %s: %w", in.CustomerID, err)
	}
	return nil
}
