package workflows

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/billcycle/billcycle/activities"
	"github.com/billcycle/billcycle/billing"
)

// periodStart is the anchor of the test subscriptions: periods run from the
// first of a month (November 2026 has 30 days).
var periodStart = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// apiPlan bills a 10.00 flat fee and 0.10 per request.
func apiPlan() billing.Plan {
	return billing.Plan{ID: "api", Name: "API", Currency: "usd", Interval: billing.Interval{Unit: billing.Month, Count: 1},
		Products: []billing.Product{
			{ID: "base", Name: "Base", FlatFee: 1000},
			{ID: "calls", Name: "Calls", Prices: []billing.MeterPrice{{Meter: "requests", Model: billing.PerUnit, UnitPrice: dec("10")}}},
		}}
}

// scalePlan bills no flat fee and 0.05 per request.
func scalePlan() billing.Plan {
	return billing.Plan{ID: "scale", Name: "Scale", Currency: "usd", Interval: billing.Interval{Unit: billing.Month, Count: 1},
		Products: []billing.Product{
			{ID: "calls", Name: "Calls", Prices: []billing.MeterPrice{{Meter: "requests", Model: billing.PerUnit, UnitPrice: dec("5")}}},
		}}
}

type event struct {
	at    time.Time
	meter string
	qty   decimal.Decimal
}

// world is the outside of the workflow as the tests see it: usage events,
// the subscription, stored alerts, and everything the activities did.
type world struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment

	mu          sync.Mutex
	events      []event
	sub         *activities.SubscriptionInfo
	plans       map[string]billing.Plan
	alerts      []billing.Alert
	invoices    []activities.IssueInvoiceInput
	invoiceIDs  map[string]bool
	notices     []activities.Notice
	access      []activities.AccessChange
	sales       []activities.SalesNotice
	watch       []SetWatchLevelsInput
	activityRun map[string]int
	nudges      int
	// daysUntilDue > 0 makes the customer pay by invoice (send_invoice).
	daysUntilDue int
	dunning      []DunningInput
	dunningAt    []time.Time
}

// newWorld builds a test environment whose activities are mocked by name and
// answered from a world. sub nil means the customer has no subscription.
func newWorld(t *testing.T, sub *billing.Subscription, th billing.Thresholds) *world {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(periodStart.Add(time.Hour))
	w := &world{t: t, env: env, plans: map[string]billing.Plan{"api": apiPlan(), "scale": scalePlan()},
		invoiceIDs: map[string]bool{}, activityRun: map[string]int{}}
	if sub != nil {
		w.sub = &activities.SubscriptionInfo{Subscription: *sub, Plan: w.plans[sub.PlanID], Thresholds: th}
	}
	env.RegisterActivity(a)
	env.RegisterActivity(invAct)
	env.RegisterActivity(ntcAct)
	env.RegisterActivity(cycAct)
	env.RegisterActivity(useAct)

	env.OnActivity(a.EnsureStripeCustomer, mock.Anything, mock.Anything).Return(func(context.Context, activities.CustomerRef) (string, error) {
		w.count("EnsureStripeCustomer")
		return "cus_1", nil
	})
	env.OnActivity(useAct.ReadUsage, mock.Anything, mock.Anything).Return(w.readUsage)
	env.OnActivity(useAct.SetWatchLevels, mock.Anything, mock.Anything).Return(func(_ context.Context, in SetWatchLevelsInput) error {
		w.count("SetWatchLevels")
		w.mu.Lock()
		defer w.mu.Unlock()
		w.watch = append(w.watch, in)
		return nil
	})
	env.OnActivity(invAct.LoadSubscription, mock.Anything, mock.Anything).Return(func(context.Context, string) (activities.SubscriptionInfo, error) {
		w.count("LoadSubscription")
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.sub == nil {
			return activities.SubscriptionInfo{}, temporal.NewNonRetryableApplicationError("no subscription", activities.ErrTypeNoSubscription, nil)
		}
		return *w.sub, nil
	})
	env.OnActivity(invAct.IssueInvoice, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.IssueInvoiceInput) (activities.IssuedInvoice, error) {
		w.count("IssueInvoice")
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.invoiceIDs[in.InvoiceID] {
			w.invoiceIDs[in.InvoiceID] = true
			w.invoices = append(w.invoices, in)
		}
		due := w.env.Now().UTC()
		if w.daysUntilDue > 0 {
			due = due.AddDate(0, 0, w.daysUntilDue)
		}
		return activities.IssuedInvoice{InvoiceID: in.InvoiceID, Status: "open", Total: in.Invoice.Total, DueAt: due}, nil
	})
	env.OnActivity(ntcAct.SendNotice, mock.Anything, mock.Anything).Return(func(_ context.Context, n activities.Notice) (activities.SentNotice, error) {
		w.count("SendNotice")
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, o := range w.notices {
			if o.DedupeKey == n.DedupeKey {
				return activities.SentNotice{DedupeKey: n.DedupeKey, Duplicate: true}, nil
			}
		}
		w.notices = append(w.notices, n)
		return activities.SentNotice{DedupeKey: n.DedupeKey}, nil
	})
	env.OnActivity(ntcAct.SetAccess, mock.Anything, mock.Anything).Return(func(_ context.Context, ch activities.AccessChange) (bool, error) {
		w.count("SetAccess")
		w.mu.Lock()
		defer w.mu.Unlock()
		w.access = append(w.access, ch)
		return true, nil
	})
	env.OnActivity(ntcAct.NotifySales, mock.Anything, mock.Anything).Return(func(_ context.Context, sn activities.SalesNotice) error {
		w.count("NotifySales")
		w.mu.Lock()
		defer w.mu.Unlock()
		w.sales = append(w.sales, sn)
		return nil
	})
	env.OnActivity(ntcAct.LoadAlerts, mock.Anything, mock.Anything).Return(func(context.Context, string) ([]billing.Alert, error) {
		w.count("LoadAlerts")
		w.mu.Lock()
		defer w.mu.Unlock()
		return append([]billing.Alert(nil), w.alerts...), nil
	})
	env.OnActivity(cycAct.ChangePlan, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ChangePlanInput) (activities.SubscriptionInfo, error) {
		w.count("ChangePlan")
		w.mu.Lock()
		defer w.mu.Unlock()
		plan, ok := w.plans[in.PlanID]
		if !ok {
			return activities.SubscriptionInfo{}, temporal.NewNonRetryableApplicationError("unknown plan", activities.ErrTypeUnknownPlan, nil)
		}
		info := activities.SubscriptionInfo{Subscription: billing.Subscription{CustomerID: in.CustomerID, Status: billing.Active, Currency: plan.Currency}}
		if w.sub != nil {
			info = *w.sub
		}
		info.Subscription.PlanID, info.Subscription.Anchor, info.Plan = plan.ID, in.At, plan
		w.sub = &info
		return info, nil
	})
	env.OnActivity(cycAct.SaveThresholds, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SaveThresholdsInput) error {
		w.count("SaveThresholds")
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.sub != nil {
			w.sub.Thresholds = in.Thresholds
		}
		return nil
	})
	env.RegisterWorkflowWithOptions(Dunning, workflow.RegisterOptions{Name: DunningName})
	env.OnWorkflow(DunningName, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in DunningInput) (DunningStatus, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.dunning = append(w.dunning, in)
		w.dunningAt = append(w.dunningAt, w.env.Now().UTC())
		return DunningStatus{}, nil
	})
	return w
}

// activeSub is an active subscription to plan anchored at periodStart.
func activeSub(plan string) *billing.Subscription {
	return &billing.Subscription{CustomerID: "acme", PlanID: plan, Anchor: periodStart, Status: billing.Active, Currency: "usd"}
}

func (w *world) count(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.activityRun[name]++
}

func (w *world) readUsage(_ context.Context, in ReadUsageInput) (map[string]decimal.Decimal, error) {
	w.count("ReadUsage")
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]decimal.Decimal{"requests": decimal.Zero}
	for _, e := range w.events {
		if !e.at.Before(in.From) && e.at.Before(in.To) {
			out[e.meter] = out[e.meter].Add(e.qty)
		}
	}
	return out, nil
}

// at runs f when the workflow's clock reaches t.
func (w *world) at(t time.Time, f func()) {
	w.env.RegisterDelayedCallback(f, t.Sub(periodStart.Add(time.Hour)))
}

// use reports qty of meter at t (event time t, arriving at t) and nudges the
// workflow as ingestion would when a watch level is reached.
func (w *world) use(t time.Time, meter, qty string) {
	w.at(t, func() {
		w.mu.Lock()
		w.events = append(w.events, event{at: t, meter: meter, qty: dec(qty)})
		w.mu.Unlock()
		w.env.SignalWorkflow(SignalUsageCrossed, UsageCrossed{Meter: meter})
	})
}

// update sends an update at t and records its outcome in *err (nil when accepted and completed).
func (w *world) update(t time.Time, name string, arg any, result *error) {
	w.at(t, func() {
		w.env.UpdateWorkflow(name, name+"-"+t.Format(time.RFC3339), &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { *result = err },
			OnComplete: func(_ any, err error) {
				if err != nil {
					*result = err
				}
			},
		}, arg)
	})
}

// run executes the workflow from in and returns the next run's input when it
// continued as new, or the final status.
func (w *world) run(in SignupInput) (next *SignupInput, final CycleStatus) {
	w.t.Helper()
	w.env.ExecuteWorkflow(BillingCycle, in)
	if !w.env.IsWorkflowCompleted() {
		w.t.Fatal("workflow did not complete")
	}
	err := w.env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if errors.As(err, &can) {
		var n SignupInput
		if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &n); err != nil {
			w.t.Fatalf("decode continue-as-new input: %v", err)
		}
		return &n, CycleStatus{}
	}
	if err != nil {
		w.t.Fatalf("workflow failed: %v", err)
	}
	if err := w.env.GetWorkflowResult(&final); err != nil {
		w.t.Fatal(err)
	}
	return nil, final
}

func (w *world) noticeKeys(kind string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var keys []string
	for _, n := range w.notices {
		if kind == "" || n.Kind == kind {
			keys = append(keys, n.DedupeKey)
		}
	}
	sort.Strings(keys)
	return keys
}

func (w *world) invoiceTotals() map[string]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int64{}
	for _, in := range w.invoices {
		out[in.InvoiceID] = in.Invoice.Total
	}
	return out
}

func (w *world) totalActivities() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.activityRun {
		n += c
	}
	return n
}

func signup() SignupInput {
	return SignupInput{CustomerID: "acme", Email: "b@acme.test", Name: "Acme", Plan: "api", Metadata: map[string]string{"tier": "silver"}}
}

func dayAt(d int, h int) time.Time {
	return periodStart.AddDate(0, 0, d-1).Add(time.Duration(h) * time.Hour)
}

type decimalT = decimal.Decimal

// at2 is at for a world whose clock started at another time.
func (w *world) at2(t time.Time, f func()) {
	w.env.RegisterDelayedCallback(f, t.Sub(w.env.Now()))
}

// addEvent records qty requests at t and nudges the workflow.
func (w *world) addEvent(t time.Time, qty string) {
	w.mu.Lock()
	w.events = append(w.events, event{at: t, meter: "requests", qty: dec(qty)})
	w.mu.Unlock()
	w.env.SignalWorkflow(SignalUsageCrossed, UsageCrossed{Meter: "requests"})
}
