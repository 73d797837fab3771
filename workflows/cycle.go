package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/billcycle/billcycle/activities"
)

// a refers to activity methods by name; it is never dereferenced.
var a *activities.Activities

// BillingCycle is one customer's billing cycle, id CustomerWorkflowID. It
// onboards the customer (Stripe customer), then keeps the cycle until the
// subscription is canceled.
func BillingCycle(ctx workflow.Context, in SignupInput) (CycleStatus, error) {
	c := newCycle(in)
	return c.run(ctx)
}

// cycle is the workflow's state; it is one serializable value so that
// continue-as-new can carry it whole.
type cycle struct {
	in     SignupInput
	status CycleStatus
}

func newCycle(in SignupInput) *cycle {
	return &cycle{in: in, status: CycleStatus{CustomerID: in.CustomerID, Plan: in.Plan, Status: StatusOnboarding}}
}

func (c *cycle) run(ctx workflow.Context) (CycleStatus, error) {
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryStatus, func() (CycleStatus, error) { return c.status, nil },
		workflow.QueryHandlerOptions{Description: "Plan, status and Stripe customer of this customer's billing cycle"}); err != nil {
		return c.status, err
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute},
	})
	ref := activities.CustomerRef{CustomerID: c.in.CustomerID, Email: c.in.Email, Name: c.in.Name, Metadata: c.in.Metadata}
	if err := workflow.ExecuteActivity(ctx, a.EnsureStripeCustomer, ref).Get(ctx, &c.status.StripeCustomerID); err != nil {
		return c.status, err
	}
	c.setStatus(ctx, StatusActive)

	cancel := workflow.GetSignalChannel(ctx, SignalCancel)
	cancel.Receive(ctx, nil)
	c.setStatus(ctx, StatusCanceled)
	return c.status, nil
}

// setStatus records s in the state, the search attributes and the UI details.
func (c *cycle) setStatus(ctx workflow.Context, s string) {
	c.status.Status = s
	_ = workflow.UpsertTypedSearchAttributes(ctx, SearchStatus.ValueSet(s))
	workflow.SetCurrentDetails(ctx, "Customer "+c.in.CustomerID+" on plan "+c.in.Plan+": "+s)
}
