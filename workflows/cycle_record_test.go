package workflows

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/billcycle/billcycle/activities"
	"github.com/billcycle/billcycle/billing"
)

// TestRecordHistories runs BillingCycle scenarios on a real Temporal server
// (BILLCYCLE_RECORD_ADDRESS, with the search attributes registered) against
// in-memory activities, and prints the workflow and run ids whose histories
// `temporal workflow show --output json` saves into testdata/ for
// TestReplayHistories. Skipped unless the variable is set.
func TestRecordHistories(t *testing.T) {
	addr := os.Getenv("BILLCYCLE_RECORD_ADDRESS")
	if addr == "" {
		t.Skip("set BILLCYCLE_RECORD_ADDRESS to record histories on a Temporal server")
	}
	c, err := client.Dial(client.Options{HostPort: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tq := fmt.Sprintf("record-%d", time.Now().UnixNano())
	w := worker.New(c, tq, worker.Options{})
	w.RegisterWorkflowWithOptions(BillingCycle, workflow.RegisterOptions{Name: BillingCycleName})
	f := &recordFakes{usage: map[string]decimal.Decimal{}, subs: map[string]activities.SubscriptionInfo{}}
	for name, fn := range map[string]any{
		"EnsureStripeCustomer": func(context.Context, activities.CustomerRef) (string, error) { return "cus_rec", nil },
		"ReadUsage":            f.readUsage,
		"SetWatchLevels":       func(context.Context, SetWatchLevelsInput) error { return nil },
		"LoadSubscription":     f.loadSubscription,
		"IssueInvoice": func(_ context.Context, in activities.IssueInvoiceInput) (activities.IssuedInvoice, error) {
			return activities.IssuedInvoice{InvoiceID: in.InvoiceID, Status: "open", Total: in.Invoice.Total}, nil
		},
		"SendNotice": func(_ context.Context, n activities.Notice) (activities.SentNotice, error) {
			return activities.SentNotice{DedupeKey: n.DedupeKey}, nil
		},
		"SetAccess":   func(context.Context, activities.AccessChange) (bool, error) { return true, nil },
		"NotifySales": func(context.Context, activities.SalesNotice) error { return nil },
		"LoadAlerts": func(context.Context, string) ([]billing.Alert, error) {
			return []billing.Alert{{ID: "all-100", Meter: "requests", Threshold: dec("100"), Direction: billing.Above,
				Actions: []billing.AlertAction{billing.ActionEmail, billing.ActionRevokeAccess}, CreatedAt: time.Unix(0, 0).UTC()}}, nil
		},
		"ChangePlan":     f.changePlan,
		"SaveThresholds": func(context.Context, activities.SaveThresholdsInput) error { return nil },
	} {
		w.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	now := time.Now().UTC()
	suffix := now.Format("150405")
	start := func(id string, sub *billing.Subscription, plan billing.Plan, th billing.Thresholds) client.WorkflowRun {
		if sub != nil {
			f.mu.Lock()
			f.subs[id] = activities.SubscriptionInfo{Subscription: *sub, Plan: plan, Thresholds: th}
			f.mu.Unlock()
		}
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: CustomerWorkflowID(id), TaskQueue: tq},
			BillingCycleName, SignupInput{CustomerID: id, Email: id + "@x.test", Name: id, Metadata: map[string]string{"tier": "silver"}})
		if err != nil {
			t.Fatal(err)
		}
		return run
	}
	daily := apiPlan()
	daily.ID, daily.Interval = "daily", billing.Interval{Unit: billing.Day, Count: 1}

	// 1. A daily period ending in 20 s: alert fires, the period ends, continue-as-new.
	endID := "rec-end-" + suffix
	endSub := &billing.Subscription{CustomerID: endID, PlanID: "daily", Anchor: now.Add(20*time.Second - 24*time.Hour), Status: billing.Active, Currency: "usd"}
	f.setUsage(dec("150"))
	endRun := start(endID, endSub, daily, billing.Thresholds{})

	// 2. A monthly cycle: threshold invoice, alert, updates, account status, cancel.
	opsID := "rec-ops-" + suffix
	opsSub := &billing.Subscription{CustomerID: opsID, PlanID: "api", Anchor: now.Add(-48 * time.Hour), Status: billing.Active, Currency: "usd"}
	opsRun := start(opsID, opsSub, apiPlan(), billing.Thresholds{AmountGTE: 2000})
	time.Sleep(3 * time.Second)
	upd := func(id, name string, arg any) {
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: CustomerWorkflowID(id), UpdateName: name,
			Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := h.Get(ctx, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	upd(opsID, UpdateUpsertAlert, billing.Alert{ID: "own", Meter: "requests", CustomerID: opsID, Threshold: dec("10"),
		Actions: []billing.AlertAction{billing.ActionNotifySales}})
	upd(opsID, UpdateSetThresholds, billing.Thresholds{AmountGTE: 3000, UsageGTE: map[string]decimal.Decimal{"requests": dec("500")}})
	if err := c.SignalWorkflow(ctx, CustomerWorkflowID(opsID), "", SignalAccountStatus, AccountStatus{Status: StatusPastDue, InvoiceID: "inv"}); err != nil {
		t.Fatal(err)
	}
	f.setUsage(dec("400"))
	if err := c.SignalWorkflow(ctx, CustomerWorkflowID(opsID), "", SignalUsageCrossed, UsageCrossed{Meter: "requests"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if _, err := c.QueryWorkflow(ctx, CustomerWorkflowID(opsID), "", QueryStatus); err != nil {
		t.Fatal(err)
	}
	if err := c.SignalWorkflow(ctx, CustomerWorkflowID(opsID), "", SignalCancel, nil); err != nil {
		t.Fatal(err)
	}
	var st CycleStatus
	if err := opsRun.Get(ctx, &st); err != nil {
		t.Fatal(err)
	}

	// 3. No subscription at signup, then a plan change, which continues as new.
	planID := "rec-plan-" + suffix
	planRun := start(planID, nil, billing.Plan{}, billing.Thresholds{})
	time.Sleep(2 * time.Second)
	upd(planID, UpdateChangePlan, ChangePlanRequest{PlanID: "api"})

	time.Sleep(25 * time.Second) // let the daily period end
	for _, r := range []client.WorkflowRun{endRun, opsRun, planRun} {
		fmt.Printf("RECORDED %s %s\n", r.GetID(), r.GetRunID())
	}
	for _, id := range []string{endID, planID} {
		_ = c.TerminateWorkflow(ctx, CustomerWorkflowID(id), "", "recording done")
	}
}

type recordFakes struct {
	mu    sync.Mutex
	usage map[string]decimal.Decimal
	subs  map[string]activities.SubscriptionInfo
}

func (f *recordFakes) setUsage(v decimal.Decimal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.usage["requests"] = v
}

func (f *recordFakes) readUsage(context.Context, ReadUsageInput) (map[string]decimal.Decimal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return map[string]decimal.Decimal{"requests": f.usage["requests"]}, nil
}

func (f *recordFakes) loadSubscription(_ context.Context, customerID string) (activities.SubscriptionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, ok := f.subs[customerID]
	if !ok {
		return info, temporalNoSubscription()
	}
	return info, nil
}

func (f *recordFakes) changePlan(_ context.Context, in activities.ChangePlanInput) (activities.SubscriptionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info := activities.SubscriptionInfo{Subscription: billing.Subscription{CustomerID: in.CustomerID, PlanID: in.PlanID,
		Anchor: in.At, Status: billing.Active, Currency: "usd"}, Plan: apiPlan()}
	f.subs[in.CustomerID] = info
	return info, nil
}

func temporalNoSubscription() error {
	return temporal.NewNonRetryableApplicationError("no subscription", activities.ErrTypeNoSubscription, nil)
}
