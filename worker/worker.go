// Package worker builds billcycle's Temporal worker: it wires the store and
// the outside-system clients into the activities, and registers the
// workflows and activities on the task queue.
package worker

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/billcycle/billcycle/activities"
	"github.com/billcycle/billcycle/integrations/stripe"
	"github.com/billcycle/billcycle/store"
	"github.com/billcycle/billcycle/workflows"
)

// Deps are the dependencies the activities run on.
type Deps struct {
	Store  *store.Store
	Stripe *stripe.Client
	// Notices configures email (SendGrid or the dev outbox), sales and access notices.
	Notices NoticeConfig
}

// Activities builds the activities over deps.
func Activities(d Deps) *activities.Activities {
	return &activities.Activities{
		Customers: d.Store,
		Payments:  payments{d.Stripe},
	}
}

// Register registers every workflow and the activities on w.
func Register(w sdkworker.Registry, acts *activities.Activities) {
	w.RegisterWorkflowWithOptions(workflows.BillingCycle, workflow.RegisterOptions{Name: workflows.BillingCycleName})
	w.RegisterActivity(acts)
}

// New builds a worker on taskQueue with every workflow and activity registered.
func New(c client.Client, taskQueue string, d Deps) sdkworker.Worker {
	w := sdkworker.New(c, taskQueue, sdkworker.Options{})
	Register(w, Activities(d))
	registerInvoices(w, d)
	RegisterNotices(w, d)
	registerDunning(w, d)
	registerCycle(w, d)
	w.RegisterActivity(&activities.UsageActivities{Usage: d.Store})
	return w
}

// Run runs a worker until ctx ends.
func Run(ctx context.Context, c client.Client, taskQueue string, d Deps) error {
	w := New(c, taskQueue, d)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	<-ctx.Done()
	w.Stop()
	return nil
}

// payments adapts the Stripe client to activities.Payments.
type payments struct{ c *stripe.Client }

func (p payments) EnsureCustomer(ctx context.Context, c activities.CustomerRef) (string, error) {
	id, err := p.c.EnsureCustomer(ctx, stripe.CustomerInput{CustomerID: c.CustomerID, Email: c.Email, Name: c.Name, Metadata: c.Metadata})
	return id, classify(err)
}

// classify marks errors Stripe would repeat on every retry as permanent.
func classify(err error) error {
	if err == nil || stripe.IsRetryable(err) {
		return err
	}
	return errors.Join(activities.ErrPermanent, err)
}
