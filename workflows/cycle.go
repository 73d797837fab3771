package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/billcycle/billcycle/activities"
	"github.com/billcycle/billcycle/billing"
)

// Activity references; they are never dereferenced.
var (
	a      *activities.Activities
	invAct *activities.InvoiceActivities
	ntcAct *activities.NoticeActivities
	cycAct *activities.CycleActivities
	useAct *activities.UsageActivities
)

// BillingCycle is one customer's billing cycle, id CustomerWorkflowID. It
// onboards the customer (Stripe customer), loads the subscription, then
// watches usage each period: it fires usage alerts, issues early invoices
// when billing thresholds are crossed and the cycle invoice at the period's
// end, and continues as new into the next period with its state carried.
// It ends when the subscription is canceled.
func BillingCycle(ctx workflow.Context, in SignupInput) (CycleStatus, error) {
	c := newCycle(in)
	return c.run(ctx)
}

// cycle is the workflow: the serializable state plus this run's channels and
// flags. Handlers are its methods.
type cycle struct {
	in SignupInput
	st CycleState

	// Set by signals and updates, consumed by the run loop.
	canceled    bool
	nudged      bool
	dirty       bool
	pendingPlan *activities.SubscriptionInfo
	restart     bool

	wake   workflow.Channel
	cancel workflow.ReceiveChannel
	nudge  workflow.ReceiveChannel
	acct   workflow.ReceiveChannel
	subChg workflow.ReceiveChannel
	alerts workflow.ReceiveChannel
}

func newCycle(in SignupInput) *cycle {
	c := &cycle{in: in}
	if in.Carried != nil {
		c.st = *in.Carried
		c.in.Carried = nil
	} else {
		c.st = CycleState{Status: StatusOnboarding}
	}
	return c
}

// activityOptions: short activities, retried with backoff until they
// succeed or fail with a non-retryable error.
var activityOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    5 * time.Minute,
	},
}

// invoiceOptions add a heartbeat timeout to IssueInvoice, which heartbeats
// while it talks to Stripe: when its worker dies, the server notices within
// the heartbeat timeout instead of the StartToClose timeout, so the invoice is
// finished by another worker sooner. (Replay matches activities by id and
// type only, so this option keeps recorded histories replaying.)
func invoiceOptions(ctx workflow.Context) workflow.Context {
	o := activityOptions
	o.HeartbeatTimeout = 10 * time.Second
	return workflow.WithActivityOptions(ctx, o)
}

func (c *cycle) run(ctx workflow.Context) (CycleStatus, error) {
	ctx = workflow.WithActivityOptions(ctx, activityOptions)
	c.st.Runs++
	if err := c.register(ctx); err != nil {
		return c.status(ctx), err
	}
	c.publish(ctx)
	if !c.st.Onboarded {
		ref := activities.CustomerRef{CustomerID: c.in.CustomerID, Email: c.in.Email, Name: c.in.Name, Metadata: c.in.Metadata}
		if err := workflow.ExecuteActivity(ctx, a.EnsureStripeCustomer, ref).Get(ctx, &c.st.StripeCustomerID); err != nil {
			return c.status(ctx), err
		}
		c.st.Onboarded = true
		if c.st.Status == StatusOnboarding {
			c.st.Status = StatusActive
		}
		c.st.NeedReload = c.st.Sub == nil
	}
	if c.st.NeedReload {
		c.reload(ctx)
	}
	if c.st.Sub == nil && c.in.Plan != "" && !c.canceled {
		c.changePlan(ctx, c.in.Plan)
	}
	for c.st.Sub == nil && c.pendingPlan == nil {
		c.publish(ctx)
		if c.canceled {
			return c.finish(ctx)
		}
		if c.st.NeedReload {
			c.reload(ctx)
			continue
		}
		c.wait(ctx, time.Time{})
	}
	if c.pendingPlan != nil {
		return c.applyPlan(ctx)
	}
	if c.st.Period.End.IsZero() {
		c.startPeriod(ctx, billing.PeriodAt(c.st.Sub.Anchor, c.st.Plan.Interval, workflow.Now(ctx)))
	}
	for {
		switch {
		case c.canceled:
			return c.finish(ctx)
		case c.pendingPlan != nil:
			return c.applyPlan(ctx)
		case c.st.NeedReload:
			c.reload(ctx)
			continue
		}
		now := workflow.Now(ctx)
		if !now.Before(c.st.Period.End) {
			return c.endPeriod(ctx)
		}
		if c.nudged || c.dirty || !now.Before(c.st.NextCheck) {
			c.nudged, c.dirty = false, false
			c.check(ctx)
			if c.restart {
				return c.resetAnchor(ctx)
			}
		}
		c.startDueDunning(ctx)
		c.publish(ctx)
		info := workflow.GetInfo(ctx)
		if info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() >= HistoryBudget {
			return c.continueAsNew(ctx)
		}
		c.wait(ctx, minTime(minTime(c.st.NextCheck, c.st.Period.End), c.nextDue()))
	}
}

// register installs the query, update and signal handlers.
func (c *cycle) register(ctx workflow.Context) error {
	c.wake = workflow.NewBufferedChannel(ctx, 1)
	c.cancel = workflow.GetSignalChannel(ctx, SignalCancel)
	c.nudge = workflow.GetSignalChannel(ctx, SignalUsageCrossed)
	c.acct = workflow.GetSignalChannel(ctx, SignalAccountStatus)
	c.subChg = workflow.GetSignalChannel(ctx, SignalSubscriptionChanged)
	c.alerts = workflow.GetSignalChannel(ctx, SignalAlertsChanged)
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryStatus, func() (CycleStatus, error) { return c.status(ctx), nil },
		workflow.QueryHandlerOptions{Description: "Period, usage per meter, amount so far, thresholds, alerts and next check of this customer's billing cycle"}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateChangePlan, c.onChangePlan, workflow.UpdateHandlerOptions{
		Validator:   c.validateChangePlan,
		Description: "Move the customer to another plan now: usage so far is invoiced on the old plan and a new period starts",
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateSetThresholds, c.onSetThresholds, workflow.UpdateHandlerOptions{
		Validator:   c.validateThresholds,
		Description: "Replace the billing thresholds (amount_gte in minor units, usage_gte per meter)",
	}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateUpsertAlert, c.onUpsertAlert, workflow.UpdateHandlerOptions{
		Validator:   c.validateAlert,
		Description: "Add or change a usage alert (archived: true removes it); at most 25 per meter",
	})
}

// wait blocks until the timer at until (none when zero), a signal or an
// update, then takes in every signal that arrived.
func (c *cycle) wait(ctx workflow.Context, until time.Time) {
	sel := workflow.NewSelector(ctx)
	timerCtx, stopTimer := workflow.WithCancel(ctx)
	fired := until.IsZero()
	if !until.IsZero() {
		d := max(until.Sub(workflow.Now(ctx)), time.Millisecond)
		t := workflow.NewTimerWithOptions(timerCtx, d, workflow.TimerOptions{Summary: "next usage check or period end"})
		sel.AddFuture(t, func(workflow.Future) { fired = true })
	}
	for _, ch := range []workflow.ReceiveChannel{c.cancel, c.nudge, c.acct, c.subChg, c.alerts, c.wake} {
		sel.AddReceive(ch, func(workflow.ReceiveChannel, bool) {})
	}
	sel.Select(ctx)
	if !fired {
		stopTimer() // a signal or update came first
	}
	c.drain(ctx)
}

// drain takes in every pending signal without blocking.
func (c *cycle) drain(ctx workflow.Context) {
	for c.cancel.ReceiveAsync(nil) {
		c.canceled = true
	}
	var uc UsageCrossed
	for c.nudge.ReceiveAsync(&uc) {
		c.nudged = true
		delete(c.st.Watch, uc.Meter) // ingestion cleared that level
	}
	var as AccountStatus
	for c.acct.ReceiveAsync(&as) {
		switch as.Status {
		case StatusPastDue, StatusSuspended, StatusActive:
			c.st.Status = as.Status
		default:
			workflow.GetLogger(ctx).Warn("ignoring unknown account status", "status", as.Status, "invoice", as.InvoiceID)
		}
	}
	for c.subChg.ReceiveAsync(nil) {
		c.st.NeedReload = true
	}
	for c.alerts.ReceiveAsync(nil) {
		c.st.AlertsLoadedAt = time.Time{} // reload at the check this causes
		c.dirty = true
	}
	for c.wake.ReceiveAsync(nil) {
		c.dirty = true
	}
}

// reload loads the stored subscription. A plan change there starts a new
// period like the change-plan update; a canceled subscription cancels.
func (c *cycle) reload(ctx workflow.Context) {
	c.st.NeedReload = false
	var info activities.SubscriptionInfo
	err := workflow.ExecuteActivity(ctx, invAct.LoadSubscription, c.in.CustomerID).Get(ctx, &info)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeNoSubscription {
		return // no subscription yet: wait for one
	}
	if err != nil {
		c.fail(ctx, "load subscription", err)
		return
	}
	switch {
	case info.Subscription.Status == billing.Canceled:
		c.canceled = true
	case c.st.Sub == nil:
		c.st.Sub, c.st.Plan, c.st.Thresholds = &info.Subscription, info.Plan, info.Thresholds
	case info.Subscription.PlanID != c.st.Sub.PlanID:
		info.Subscription.Anchor = workflow.Now(ctx)
		c.pendingPlan = &info
	default:
		info.Subscription.Anchor = c.st.Sub.Anchor
		c.st.Sub, c.st.Plan, c.st.Thresholds = &info.Subscription, info.Plan, info.Thresholds
		c.dirty = true
	}
}

// changePlan stores the new plan (anchored now) and leaves the switch to the
// run loop.
func (c *cycle) changePlan(ctx workflow.Context, planID string) error {
	var info activities.SubscriptionInfo
	in := activities.ChangePlanInput{CustomerID: c.in.CustomerID, PlanID: planID, At: workflow.Now(ctx)}
	if err := workflow.ExecuteActivity(ctx, cycAct.ChangePlan, in).Get(ctx, &info); err != nil {
		c.fail(ctx, "change plan to "+planID, err)
		return err
	}
	c.pendingPlan = &info
	c.wake.SendAsync(true)
	return nil
}

// startPeriod makes p the current period and clears what is per period.
func (c *cycle) startPeriod(ctx workflow.Context, p billing.Period) {
	c.st.Period = p
	c.st.Usage, c.st.PrevUsage, c.st.IssuedUsage, c.st.AlertValues = nil, nil, nil, nil
	c.st.LastCheck, c.st.PrevCheck = time.Time{}, time.Time{}
	c.st.Billed, c.st.LastIssued = billing.Invoice{}, billing.Invoice{}
	c.st.EarlyInvoices = 0
	c.st.Watch = nil
	c.st.Interval = MinCheckInterval
	c.st.NextCheck = workflow.Now(ctx)
	for _, id := range sortedKeys(c.st.AlertStates) {
		s := c.st.AlertStates[id]
		c.st.AlertStates[id] = billing.AlertState{LastFired: s.LastFired, BaselineKnown: true}
	}
}

// applyPlan closes the current period at now on the old plan and continues
// as new into a period of the new plan starting now.
func (c *cycle) applyPlan(ctx workflow.Context) (CycleStatus, error) {
	info := c.pendingPlan
	c.pendingPlan = nil
	now := workflow.Now(ctx)
	if c.st.Sub != nil && !c.st.Period.End.IsZero() {
		c.closePeriod(ctx, "cycle", now)
	}
	info.Subscription.Anchor = now
	c.st.Sub, c.st.Plan, c.st.Thresholds = &info.Subscription, info.Plan, info.Thresholds
	c.startPeriod(ctx, billing.PeriodAt(now, info.Plan.Interval, now))
	c.restoreAccess(ctx)
	return c.continueAsNew(ctx)
}

// resetAnchor starts a new period now after a threshold invoice that resets
// the billing cycle anchor; that invoice billed everything so far.
func (c *cycle) resetAnchor(ctx workflow.Context) (CycleStatus, error) {
	c.restart = false
	now := workflow.Now(ctx)
	c.st.Sub.Anchor = now
	c.startPeriod(ctx, billing.PeriodAt(now, c.st.Plan.Interval, now))
	c.restoreAccess(ctx)
	return c.continueAsNew(ctx)
}

// endPeriod issues the cycle invoice and continues as new into the next
// period, reloading the subscription there.
func (c *cycle) endPeriod(ctx workflow.Context) (CycleStatus, error) {
	end := c.st.Period.End
	c.closePeriod(ctx, "cycle", end)
	c.startPeriod(ctx, billing.PeriodAt(c.st.Sub.Anchor, c.st.Plan.Interval, end))
	c.restoreAccess(ctx)
	c.st.NeedReload = true
	return c.continueAsNew(ctx)
}

// finish ends the subscription: usage so far is invoiced and the workflow
// completes.
func (c *cycle) finish(ctx workflow.Context) (CycleStatus, error) {
	if c.st.Sub != nil && !c.st.Period.End.IsZero() {
		c.closePeriod(ctx, "final", workflow.Now(ctx))
	}
	c.st.Status = StatusCanceled
	c.publish(ctx)
	for len(c.st.DueInvoices) > 0 { // unpaid invoices are still dunned
		c.wait(ctx, c.nextDue())
		c.startDueDunning(ctx)
	}
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return c.status(ctx), nil
}

// trackDue remembers an issued invoice that is paid by a due date (collection
// send_invoice), so its dunning starts when the date passes unpaid.
func (c *cycle) trackDue(ctx workflow.Context, issued activities.IssuedInvoice) {
	if issued.Total <= 0 || !issued.DueAt.After(workflow.Now(ctx).Add(time.Hour)) {
		return // charged automatically: failed payments reach dunning through the webhook
	}
	c.st.DueInvoices = append(c.st.DueInvoices, DueInvoice{InvoiceID: issued.InvoiceID, StripeInvoiceID: issued.StripeInvoiceID,
		PlanID: c.st.Plan.ID, Total: issued.Total, Currency: c.st.Plan.Currency, DueAt: issued.DueAt})
}

// nextDue is the earliest due date of the tracked invoices (zero if none).
func (c *cycle) nextDue() time.Time {
	var t time.Time
	for _, d := range c.st.DueInvoices {
		t = minTime(t, d.DueAt)
	}
	return t
}

// startDueDunning starts, as abandoned children, the Dunning of every
// tracked invoice whose due date passed. Dunning checks first whether the
// invoice was paid; one already started (by a failed payment) is left alone.
func (c *cycle) startDueDunning(ctx workflow.Context) {
	now := workflow.Now(ctx)
	var keep []DueInvoice
	for _, d := range c.st.DueInvoices {
		if now.Before(d.DueAt) {
			keep = append(keep, d)
			continue
		}
		in := DunningInput{InvoiceID: d.InvoiceID, StripeInvoiceID: d.StripeInvoiceID, CustomerID: c.in.CustomerID,
			PlanID: d.PlanID, StartedAt: d.DueAt, Reason: DunningReasonPastDue, AmountDue: d.Total, Currency: string(d.Currency)}
		child := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, DunningChildOptions(in)), DunningName, in)
		err := child.GetChildWorkflowExecution().Get(ctx, nil)
		if err != nil && !temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			c.fail(ctx, "start dunning of "+d.InvoiceID, err)
		}
	}
	c.st.DueInvoices = keep
}

// closePeriod invoices the period's billable usage up to upTo, less the
// early invoices; a negative remainder becomes credit for later cycles.
func (c *cycle) closePeriod(ctx workflow.Context, name string, upTo time.Time) {
	from, ok := c.billFrom()
	if !ok || !from.Before(upTo) {
		return // the whole period was a trial
	}
	usage, err := c.readUsage(ctx, from, minTime(upTo, c.st.Period.End))
	if err != nil {
		c.fail(ctx, "read usage at period end", err)
		return
	}
	current := billing.Rate(c.st.Plan, c.ratedSub(), c.st.Period, usage)
	inc := billing.Increment(current, c.st.LastIssued)
	switch {
	case inc.Total < 0:
		c.st.CreditCarry += -inc.Total
	case inc.Total > 0:
		id := c.invoiceID(name)
		in := activities.IssueInvoiceInput{InvoiceID: id, CustomerID: c.in.CustomerID, Kind: activities.InvoiceKindCycle, Invoice: inc, UsageTo: upTo}
		var issued activities.IssuedInvoice
		if err := workflow.ExecuteActivity(invoiceOptions(ctx), invAct.IssueInvoice, in).Get(ctx, &issued); err != nil {
			c.fail(ctx, "issue invoice "+id, err)
			return
		}
		c.trackDue(ctx, issued)
		c.st.CreditCarry = max(0, c.st.CreditCarry-current.CreditApplied)
	}
}

// continueAsNew waits for running handlers, takes in the last signals and
// hands the state to the next run.
func (c *cycle) continueAsNew(ctx workflow.Context) (CycleStatus, error) {
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	c.drain(ctx)
	if c.canceled {
		return c.finish(ctx)
	}
	if c.pendingPlan != nil {
		return c.applyPlan(ctx)
	}
	in := c.in
	st := c.st
	in.Carried = &st
	return c.status(ctx), workflow.NewContinueAsNewError(ctx, BillingCycleName, in)
}

// restoreAccess grants API access again when an alert had revoked it and
// dunning has not suspended the account.
func (c *cycle) restoreAccess(ctx workflow.Context) {
	if c.st.AccessRevokedBy == "" || c.st.Status == StatusSuspended {
		return
	}
	ch := activities.AccessChange{
		DedupeKey:  fmt.Sprintf("customer/%s/%s/access-restore", c.in.CustomerID, periodKey(c.st.Period.Start)),
		CustomerID: c.in.CustomerID, Granted: true, Reason: "new billing period",
	}
	if err := workflow.ExecuteActivity(ctx, ntcAct.SetAccess, ch).Get(ctx, nil); err != nil {
		c.fail(ctx, "restore access", err)
		return
	}
	c.st.AccessRevokedBy = ""
}

// fail records an action that failed for good; the cycle carries on.
func (c *cycle) fail(ctx workflow.Context, what string, err error) {
	c.st.LastError = what + ": " + err.Error()
	workflow.GetLogger(ctx).Error("billing cycle action failed", "action", what, "error", err)
}

// billFrom is where the period's billable usage starts: after the trial.
// ok is false when the whole period is in the trial.
func (c *cycle) billFrom() (time.Time, bool) {
	p := c.st.Period
	if te := c.st.Sub.TrialEnd; te != nil && te.After(p.Start) {
		return *te, te.Before(p.End)
	}
	return p.Start, true
}

// ratedSub is the subscription with credit owed from earlier cycles.
func (c *cycle) ratedSub() billing.Subscription {
	s := *c.st.Sub
	s.CreditBalance += c.st.CreditCarry
	return s
}

// invoiceID is the stable id of this period's invoice name ("cycle",
// "final", "threshold-2").
func (c *cycle) invoiceID(name string) string {
	return fmt.Sprintf("customer/%s/%s/%s", c.in.CustomerID, periodKey(c.st.Period.Start), name)
}

// periodKey names a period by its start: the date, or the full time when
// the period does not start at midnight UTC (after a plan change).
func periodKey(start time.Time) string {
	start = start.UTC()
	if start.Equal(start.Truncate(24 * time.Hour)) {
		return start.Format(time.DateOnly)
	}
	return start.Format("2006-01-02T15:04:05.000Z")
}

// status builds the answer to the status query.
func (c *cycle) status(ctx workflow.Context) CycleStatus {
	s := CycleStatus{
		CustomerID: c.in.CustomerID, Plan: c.in.Plan, Status: c.st.Status, StripeCustomerID: c.st.StripeCustomerID,
		PeriodStart: c.st.Period.Start, PeriodEnd: c.st.Period.End,
		Usage: c.st.Usage, AmountSoFar: c.st.Billed.Total, InvoicedEarly: c.st.LastIssued.Total,
		EarlyInvoices: c.st.EarlyInvoices, Thresholds: c.st.Thresholds,
		LastCheck: c.st.LastCheck, NextCheck: c.st.NextCheck, WatchLevels: c.st.Watch,
		AccessRevokedBy: c.st.AccessRevokedBy, LastError: c.st.LastError,
	}
	if c.st.Interval > 0 {
		s.CheckInterval = c.st.Interval.String()
	}
	if c.st.Sub != nil {
		now := workflow.Now(ctx)
		s.Plan, s.TrialEnd, s.Currency = c.st.Sub.PlanID, c.st.Sub.TrialEnd, c.st.Plan.Currency
		s.AmountDue = c.amountDue()
		if s.Status == StatusActive && c.st.Sub.InTrial(now) {
			s.Status = StatusTrialing
		}
		if !c.st.Period.End.IsZero() {
			s.ThresholdsSuppressed = billing.ThresholdsSuppressed(*c.st.Sub, c.st.Period, now)
		}
	}
	for _, id := range sortedKeys(c.st.Alerts) {
		st := c.st.AlertStates[id]
		s.Alerts = append(s.Alerts, AlertStatus{Alert: c.st.Alerts[id], Value: c.st.AlertValues[id],
			Baseline: st.Baseline, Fired: st.Fired, LastFired: st.LastFired})
	}
	return s
}

// amountDue is what the period billed so far and no invoice has covered.
func (c *cycle) amountDue() int64 {
	if c.st.Billed.Lines == nil {
		return 0
	}
	return max(0, billing.Increment(c.st.Billed, c.st.LastIssued).Total)
}

// publish keeps the search attributes and the UI's current details up to
// date, upserting only what changed.
func (c *cycle) publish(ctx workflow.Context) {
	st := c.status(ctx)
	cur := workflow.GetTypedSearchAttributes(ctx)
	var upd []temporal.SearchAttributeUpdate
	setKeyword := func(k temporal.SearchAttributeKeyKeyword, v string) {
		if old, ok := cur.GetKeyword(k); !ok || old != v {
			upd = append(upd, k.ValueSet(v))
		}
	}
	setKeyword(SearchCustomerID, c.in.CustomerID)
	if st.Plan != "" {
		setKeyword(SearchPlan, st.Plan)
	}
	setKeyword(SearchStatus, st.Status)
	if old, ok := cur.GetInt64(SearchAmountDue); !ok || old != st.AmountDue {
		upd = append(upd, SearchAmountDue.ValueSet(st.AmountDue))
	}
	if !st.PeriodEnd.IsZero() {
		if old, ok := cur.GetTime(SearchPeriodEnd); !ok || !old.Equal(st.PeriodEnd) {
			upd = append(upd, SearchPeriodEnd.ValueSet(st.PeriodEnd))
		}
	}
	if len(upd) > 0 {
		if err := workflow.UpsertTypedSearchAttributes(ctx, upd...); err != nil {
			workflow.GetLogger(ctx).Warn("search attributes not updated", "error", err)
		}
	}
	details := fmt.Sprintf("**%s** on plan %s: %s", c.in.CustomerID, st.Plan, st.Status)
	if !st.PeriodEnd.IsZero() {
		details += fmt.Sprintf("\n\nPeriod %s – %s · amount so far %d, due %d %s · %d early invoices · next check %s",
			st.PeriodStart.Format(time.RFC3339), st.PeriodEnd.Format(time.RFC3339), st.AmountSoFar, st.AmountDue,
			st.Currency, st.EarlyInvoices, st.NextCheck.Format(time.RFC3339))
	}
	workflow.SetCurrentDetails(ctx, details)
}

// Update handlers and validators.

func (c *cycle) validateChangePlan(req ChangePlanRequest) error {
	switch {
	case req.PlanID == "":
		return errors.New("plan_id is required")
	case c.canceled || c.st.Status == StatusCanceled:
		return errors.New("the subscription is canceled")
	case c.st.Sub != nil && c.st.Sub.PlanID == req.PlanID:
		return fmt.Errorf("the customer is already on plan %s", req.PlanID)
	case c.pendingPlan != nil:
		return errors.New("a plan change is already in progress")
	}
	return nil
}

func (c *cycle) onChangePlan(ctx workflow.Context, req ChangePlanRequest) (PlanChanged, error) {
	ctx = workflow.WithActivityOptions(ctx, activityOptions)
	if err := c.changePlan(ctx, req.PlanID); err != nil {
		return PlanChanged{}, err
	}
	return PlanChanged{PlanID: req.PlanID, EffectiveAt: c.pendingPlan.Subscription.Anchor}, nil
}

func (c *cycle) validateThresholds(t billing.Thresholds) error {
	if c.st.Sub == nil {
		return errors.New("the customer has no subscription yet")
	}
	return billing.ValidateThresholds(t, c.st.Plan)
}

func (c *cycle) onSetThresholds(ctx workflow.Context, t billing.Thresholds) (CycleStatus, error) {
	ctx = workflow.WithActivityOptions(ctx, activityOptions)
	in := activities.SaveThresholdsInput{CustomerID: c.in.CustomerID, Thresholds: t}
	if err := workflow.ExecuteActivity(ctx, cycAct.SaveThresholds, in).Get(ctx, nil); err != nil {
		return c.status(ctx), err
	}
	c.st.Thresholds = t
	c.wake.SendAsync(true)
	return c.status(ctx), nil
}

func (c *cycle) validateAlert(al billing.Alert) error {
	if err := billing.ValidateAlert(al); err != nil {
		return err
	}
	if al.CustomerID != "" && al.CustomerID != c.in.CustomerID {
		return fmt.Errorf("alert %s belongs to customer %s", al.ID, al.CustomerID)
	}
	if al.Archived {
		return nil
	}
	n := 0
	for _, id := range sortedKeys(c.st.Alerts) {
		o := c.st.Alerts[id]
		if id != al.ID && o.Meter == al.Meter && billing.AlertApplies(o, c.in.CustomerID, c.metadata()) {
			n++
		}
	}
	if n >= billing.MaxAlertsPerMeter {
		return fmt.Errorf("meter %s already has %d alerts for this customer", al.Meter, billing.MaxAlertsPerMeter)
	}
	return nil
}

func (c *cycle) onUpsertAlert(ctx workflow.Context, al billing.Alert) (CycleStatus, error) {
	if al.CreatedAt.IsZero() {
		al.CreatedAt = workflow.Now(ctx)
	}
	if al.Direction == "" {
		al.Direction = billing.Above
	}
	c.putAlert(al)
	c.wake.SendAsync(true)
	return c.status(ctx), nil
}

// putAlert adds or replaces an alert; a changed rule is armed again.
func (c *cycle) putAlert(al billing.Alert) {
	if c.st.Alerts == nil {
		c.st.Alerts = map[string]billing.Alert{}
		c.st.AlertStates = map[string]billing.AlertState{}
	}
	if al.Archived {
		delete(c.st.Alerts, al.ID)
		delete(c.st.AlertStates, al.ID)
		return
	}
	old, known := c.st.Alerts[al.ID]
	c.st.Alerts[al.ID] = al
	switch {
	case !known:
		c.st.AlertStates[al.ID] = billing.AlertState{}
	case old.Meter != al.Meter || !old.CreatedAt.Equal(al.CreatedAt):
		c.st.AlertStates[al.ID] = billing.AlertState{LastFired: c.st.AlertStates[al.ID].LastFired}
	case !old.Threshold.Equal(al.Threshold) || old.Direction != al.Direction || old.Window != al.Window:
		st := c.st.AlertStates[al.ID]
		st.Fired = 0
		c.st.AlertStates[al.ID] = st
	}
}

// metadata is the customer's metadata that all-customers alert filters
// match, with the plan under "plan" unless the metadata sets it.
func (c *cycle) metadata() map[string]string {
	md := make(map[string]string, len(c.in.Metadata)+1)
	for _, k := range sortedKeys(c.in.Metadata) {
		md[k] = c.in.Metadata[k]
	}
	if _, ok := md["plan"]; !ok && c.st.Sub != nil {
		md["plan"] = c.st.Sub.PlanID
	}
	return md
}

// minTime returns the earlier of a and b, ignoring a zero time.
func minTime(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// sortedKeys returns m's keys in order, for deterministic iteration.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	//workflowcheck:ignore keys are sorted before use
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
