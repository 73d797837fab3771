package worker

import (
	"context"

	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/billcycle/billcycle/activities"
	"github.com/billcycle/billcycle/integrations/stripe"
	"github.com/billcycle/billcycle/workflows"
)

// registerDunning registers the Dunning workflow and its own activities (the
// notices it sends are the NoticeActivities, registered by RegisterNotices).
func registerDunning(w sdkworker.Registry, d Deps) {
	w.RegisterWorkflowWithOptions(workflows.Dunning, workflow.RegisterOptions{Name: workflows.DunningName})
	w.RegisterActivity(&activities.DunningActivities{Store: d.Store, Collector: collector{d.Stripe}})
}

// collector adapts the Stripe client to activities.Collector.
type collector struct{ c *stripe.Client }

func (c collector) MarkUncollectible(ctx context.Context, stripeInvoiceID, key string) error {
	_, err := c.c.MarkUncollectible(ctx, stripeInvoiceID, key)
	return classify(err)
}
