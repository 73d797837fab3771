package workflows

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/billcycle/billcycle/activities"
	"github.com/billcycle/billcycle/billing"
)

// da refers to the dunning activities by name; it is never dereferenced.
var da *activities.DunningActivities

// na refers to the notice activities (SendNotice, SetAccess, NotifySales) by name.
var na *activities.NoticeActivities

// NoticeKindDunning is the kind of every notice dunning sends.
const NoticeKindDunning = "dunning"

// Dunning walks one unpaid invoice through its plan's dunning policy (id
// DunningWorkflowID): each step waits on a durable timer raced against the
// signals, runs its action with the dedupe key "dunning/<invoice>/step-<n>",
// and payment, voiding or a write-off ends it at once. A dispute pauses the
// clock until it closes.
func Dunning(ctx workflow.Context, in DunningInput) (DunningStatus, error) {
	d := newDunning(in)
	return d.run(ctx)
}

// dunning is the workflow's state.
type dunning struct {
	In     DunningInput
	Policy billing.Policy
	Status DunningStatus
	// Clock: Elapsed dunning time measured at TickAt; it runs while no
	// dispute is open.
	Elapsed  time.Duration
	TickAt   time.Time
	Disputes map[string]time.Time // open dispute -> opened at
	Closed   map[string]time.Time // closed dispute -> closed at
	// LastStepAt is when the last step ran, for the settle window.
	LastStepAt time.Time
	// MarkedBySelf: dunning wrote the invoice off itself, so Stripe's echo
	// of it does not stop the sequence.
	MarkedBySelf bool
}

func newDunning(in DunningInput) *dunning {
	return &dunning{
		In:       in,
		Disputes: map[string]time.Time{},
		Closed:   map[string]time.Time{},
		Status: DunningStatus{InvoiceID: in.InvoiceID, CustomerID: in.CustomerID,
			AccountStatus: StatusPastDue, Outcome: DunningRunning},
	}
}

// signals are the workflow's signal channels.
type dunningSignals struct {
	failed, paid, voided, uncollectible, opened, closed, policy workflow.ReceiveChannel
}

func (d *dunning) run(ctx workflow.Context) (DunningStatus, error) {
	query := func() (DunningStatus, error) { return d.queryAt(workflow.Now(ctx)) }
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryDunningStatus, query,
		workflow.QueryHandlerOptions{Description: "Step, next action and time, pause and outcome of this dunning sequence"}); err != nil {
		return d.Status, err
	}
	log := workflow.GetLogger(ctx)
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute},
	})
	attrs := []temporal.SearchAttributeUpdate{SearchCustomerID.ValueSet(d.In.CustomerID), SearchStatus.ValueSet(StatusPastDue)}
	if d.In.PlanID != "" {
		attrs = append(attrs, SearchPlan.ValueSet(d.In.PlanID))
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, attrs...)
	sig := dunningSignals{
		failed:        workflow.GetSignalChannel(ctx, SignalPaymentFailed),
		paid:          workflow.GetSignalChannel(ctx, SignalPaid),
		voided:        workflow.GetSignalChannel(ctx, SignalVoided),
		uncollectible: workflow.GetSignalChannel(ctx, SignalMarkedUncollectible),
		opened:        workflow.GetSignalChannel(ctx, SignalDisputeOpened),
		closed:        workflow.GetSignalChannel(ctx, SignalDisputeClosed),
		policy:        workflow.GetSignalChannel(ctx, SignalPolicyChanged),
	}

	// Events may arrive out of order: an invoice the webhooks already saw
	// paid or voided is never dunned.
	var known string
	ref := activities.DunningInvoiceRef{InvoiceID: d.In.InvoiceID, StripeInvoiceID: d.In.StripeInvoiceID}
	if err := workflow.ExecuteActivity(ctx, da.DunningInvoiceStatus, ref).Get(ctx, &known); err != nil {
		return d.Status, err
	}
	if known == "paid" || known == "void" {
		d.Status.Outcome = DunningAlreadySettled
		d.Status.AccountStatus = StatusActive
		workflow.SetCurrentDetails(ctx, "Invoice "+d.In.InvoiceID+" was already "+known+"; nothing to do")
		return d.Status, nil
	}

	if d.In.Policy != nil {
		d.Policy = *d.In.Policy
	} else if err := workflow.ExecuteActivity(ctx, da.LoadDunningPolicy, d.In.PlanID).Get(ctx, &d.Policy); err != nil {
		return d.Status, err
	}
	d.Status.PolicyID = d.Policy.ID

	now := workflow.Now(ctx)
	start := d.In.StartedAt
	if start.IsZero() || start.After(now) {
		start = now
	}
	d.Elapsed, d.TickAt = now.Sub(start), now
	d.tellCustomer(ctx, StatusPastDue)

	for {
		d.drain(ctx, sig)
		if d.Status.Outcome != DunningRunning {
			return d.finish(ctx)
		}
		d.describe(ctx)
		var timer time.Duration
		switch {
		case d.paused():
			timer = -1 // wait for a signal only
		case d.Status.Step >= len(d.Policy.Steps):
			timer = d.LastStepAt.Add(DunningSettleWindow).Sub(workflow.Now(ctx))
			if timer <= 0 {
				d.Status.Outcome = DunningExhausted
				return d.finish(ctx)
			}
		default:
			timer = time.Duration(d.Policy.Steps[d.Status.Step].After) - d.elapsed(workflow.Now(ctx))
			if timer <= 0 {
				d.runStep(ctx)
				continue
			}
		}
		tctx, cancel := workflow.WithCancel(ctx)
		sel := workflow.NewSelector(ctx)
		if timer > 0 {
			summary := "settle window"
			if d.Status.Step < len(d.Policy.Steps) {
				summary = fmt.Sprintf("step %d: %s", d.Status.Step, d.Policy.Steps[d.Status.Step].Action)
			}
			sel.AddFuture(workflow.NewTimerWithOptions(tctx, timer, workflow.TimerOptions{Summary: summary}), func(workflow.Future) {})
		}
		d.addSignals(ctx, sel, sig)
		sel.Select(ctx)
		cancel()
		log.Debug("dunning woke", "invoice", d.In.InvoiceID, "step", d.Status.Step)
	}
}

// elapsed is the dunning clock at now.
func (d *dunning) elapsed(now time.Time) time.Duration {
	if d.paused() {
		return d.Elapsed
	}
	return d.Elapsed + now.Sub(d.TickAt)
}

func (d *dunning) paused() bool { return len(d.Disputes) > 0 }

// drain handles every signal already received, without blocking.
func (d *dunning) drain(ctx workflow.Context, sig dunningSignals) {
	sel := workflow.NewSelector(ctx)
	d.addSignals(ctx, sel, sig)
	for sel.HasPending() {
		sel.Select(ctx)
	}
}

func (d *dunning) addSignals(ctx workflow.Context, sel workflow.Selector, sig dunningSignals) {
	log := workflow.GetLogger(ctx)
	sel.AddReceive(sig.failed, func(c workflow.ReceiveChannel, _ bool) {
		var p PaymentFailed
		c.Receive(ctx, &p)
		d.Status.FailedAttempts = max(d.Status.FailedAttempts+1, p.AttemptCount)
	})
	sel.AddReceive(sig.paid, func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		d.settle(DunningPaid)
	})
	sel.AddReceive(sig.voided, func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		d.settle(DunningVoided)
	})
	sel.AddReceive(sig.uncollectible, func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		if !d.MarkedBySelf {
			d.settle(DunningUncollectible)
		}
	})
	sel.AddReceive(sig.opened, func(c workflow.ReceiveChannel, _ bool) {
		var p Dispute
		c.Receive(ctx, &p)
		if closedAt, ok := d.Closed[p.DisputeID]; ok && !closedAt.Before(p.At) {
			return // its close was delivered first
		}
		now := workflow.Now(ctx)
		if !d.paused() {
			d.Elapsed = d.elapsed(now)
		}
		d.Disputes[p.DisputeID] = p.At
	})
	sel.AddReceive(sig.closed, func(c workflow.ReceiveChannel, _ bool) {
		var p Dispute
		c.Receive(ctx, &p)
		if openedAt, ok := d.Disputes[p.DisputeID]; ok && openedAt.After(p.At) {
			return // a newer open
		}
		d.Closed[p.DisputeID] = p.At
		if _, ok := d.Disputes[p.DisputeID]; !ok {
			return
		}
		delete(d.Disputes, p.DisputeID)
		if !d.paused() {
			d.TickAt = workflow.Now(ctx) // the remaining time of the current step resumes
		}
	})
	sel.AddReceive(sig.policy, func(c workflow.ReceiveChannel, _ bool) {
		var p billing.Policy
		c.Receive(ctx, &p)
		if err := p.Validate(); err != nil {
			log.Warn("ignoring invalid dunning policy", "invoice", d.In.InvoiceID, "err", err)
			return
		}
		d.changePolicy(workflow.Now(ctx), p)
	})
}

// changePolicy adopts p for the steps still ahead: every step of p due at or
// before the current dunning time counts as done (nothing is sent in a
// burst), the first later one is next.
func (d *dunning) changePolicy(now time.Time, p billing.Policy) {
	at := d.elapsed(now)
	d.Policy = p
	d.Status.PolicyID = p.ID
	d.Status.PolicyRevision++
	next := len(p.Steps)
	for i, s := range p.Steps {
		if time.Duration(s.After) > at {
			next = i
			break
		}
	}
	d.Status.Step = next
	if next == len(p.Steps) && d.LastStepAt.IsZero() {
		d.LastStepAt = now
	}
}

func (d *dunning) settle(outcome string) {
	if d.Status.Outcome == DunningRunning {
		d.Status.Outcome = outcome
	}
}

// stepKey is the dedupe key of step n of the current policy revision.
func (d *dunning) stepKey(n int) string {
	if d.Status.PolicyRevision == 0 {
		return "dunning/" + d.In.InvoiceID + "/step-" + strconv.Itoa(n)
	}
	return fmt.Sprintf("dunning/%s/policy-%d/step-%d", d.In.InvoiceID, d.Status.PolicyRevision, n)
}

// runStep runs the current step's action and moves to the next. A step whose
// activity fails for good is logged and skipped: the sequence goes on.
func (d *dunning) runStep(ctx workflow.Context) {
	n := d.Status.Step
	s := d.Policy.Steps[n]
	key := d.stepKey(n)
	log := workflow.GetLogger(ctx)
	var err error
	switch s.Action {
	case billing.ActionEmailNotice:
		err = d.sendNotice(ctx, key, s.Template)
	case billing.ActionNotifyAccountManager:
		text := fmt.Sprintf("Invoice %s of customer %s is %s overdue and still unpaid%s.", d.In.InvoiceID, d.In.CustomerID,
			d.elapsed(workflow.Now(ctx)).Round(time.Hour), d.amount())
		err = workflow.ExecuteActivity(ctx, na.NotifySales, activities.SalesNotice{DedupeKey: key, CustomerID: d.In.CustomerID, Text: text}).Get(ctx, nil)
	case billing.ActionSuspendAccess:
		var changed bool
		err = workflow.ExecuteActivity(ctx, na.SetAccess, activities.AccessChange{DedupeKey: key, CustomerID: d.In.CustomerID,
			Granted: false, Reason: "dunning: invoice " + d.In.InvoiceID + " unpaid"}).Get(ctx, &changed)
		if err == nil {
			// Only access dunning itself revoked is restored on payment.
			d.Status.Suspended = d.Status.Suspended || changed
			d.Status.AccountStatus = StatusSuspended
			_ = workflow.UpsertTypedSearchAttributes(ctx, SearchStatus.ValueSet(StatusSuspended))
			d.tellCustomer(ctx, StatusSuspended)
		}
	case billing.ActionCancelSubscription:
		err = workflow.SignalExternalWorkflow(ctx, CustomerWorkflowID(d.In.CustomerID), "", SignalCancel, nil).Get(ctx, nil)
	case billing.ActionMarkUncollectible:
		d.MarkedBySelf = true
		err = workflow.ExecuteActivity(ctx, da.MarkInvoiceUncollectible,
			activities.MarkUncollectibleInput{DedupeKey: key, StripeInvoiceID: d.In.StripeInvoiceID}).Get(ctx, nil)
	}
	if err == nil && s.Action != billing.ActionEmailNotice && s.Template != "" {
		err = d.sendNotice(ctx, key+"/notice", s.Template)
	}
	if err != nil {
		log.Error("dunning step failed; going on", "invoice", d.In.InvoiceID, "step", n, "action", s.Action, "err", err)
	}
	now := workflow.Now(ctx)
	d.Status.Done = append(d.Status.Done, DunningStepRecord{Index: n, Action: s.Action, At: now, Policy: d.Policy.ID})
	d.Status.Step = n + 1
	d.LastStepAt = now
}

func (d *dunning) amount() string {
	if d.In.AmountDue == 0 || d.In.Currency == "" {
		return ""
	}
	return fmt.Sprintf(" (%d %s minor units)", d.In.AmountDue, d.In.Currency)
}

var dunningSubjects = map[string]string{
	billing.TemplateDunningReminder:       "Your payment did not go through",
	billing.TemplateDunningSecondReminder: "Reminder: your invoice is unpaid",
	billing.TemplateDunningFinalWarning:   "Final notice: your invoice is overdue",
	billing.TemplateDunningSuspended:      "Your API access is suspended",
	billing.TemplateDunningCanceled:       "Your subscription is canceled",
	billing.TemplateDunningRestored:       "Thank you: your access is restored",
}

// sendGridTemplatePrefix starts SendGrid dynamic template ids: a step
// template like "d-0123..." is sent as that SendGrid template filled with the
// notice's Data; any other name selects billcycle's built-in subject and text.
const sendGridTemplatePrefix = "d-"

func (d *dunning) sendNotice(ctx workflow.Context, key, template string) error {
	subject, ok := dunningSubjects[template]
	if !ok {
		subject = "About your invoice " + d.In.InvoiceID
	}
	text := fmt.Sprintf("%s. Invoice %s%s.", subject, d.In.InvoiceID, d.amount())
	if d.In.HostedURL != "" && template != billing.TemplateDunningRestored {
		text += " Pay it at " + d.In.HostedURL
	}
	n := activities.Notice{DedupeKey: key, CustomerID: d.In.CustomerID, Kind: NoticeKindDunning, Subject: subject, Text: text,
		Data: map[string]any{
			"template": template, "invoice_id": d.In.InvoiceID, "amount_due": d.In.AmountDue, "currency": d.In.Currency,
			"hosted_url": d.In.HostedURL, "step": d.Status.Step,
		}}
	if strings.HasPrefix(template, sendGridTemplatePrefix) {
		n.TemplateID = template
	}
	return workflow.ExecuteActivity(ctx, na.SendNotice, n).Get(ctx, nil)
}

// tellCustomer signals the customer's BillingCycle; a missing customer
// workflow is logged, not fatal.
func (d *dunning) tellCustomer(ctx workflow.Context, status string) {
	err := workflow.SignalExternalWorkflow(ctx, CustomerWorkflowID(d.In.CustomerID), "", SignalAccountStatus,
		AccountStatus{Status: status, InvoiceID: d.In.InvoiceID}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("could not tell the customer workflow", "customer", d.In.CustomerID, "status", status, "err", err)
	}
}

// finish ends the sequence: payment restores access dunning revoked with a
// thank-you notice; voiding restores it silently.
func (d *dunning) finish(ctx workflow.Context) (DunningStatus, error) {
	base := "dunning/" + d.In.InvoiceID
	switch d.Status.Outcome {
	case DunningPaid, DunningVoided:
		if d.Status.Suspended {
			var changed bool
			err := workflow.ExecuteActivity(ctx, na.SetAccess, activities.AccessChange{DedupeKey: base + "/restore", CustomerID: d.In.CustomerID,
				Granted: true, Reason: "dunning: invoice " + d.In.InvoiceID + " " + d.Status.Outcome}).Get(ctx, &changed)
			if err != nil {
				return d.Status, err
			}
			d.Status.Suspended = false
			if d.Status.Outcome == DunningPaid {
				if err := d.sendNotice(ctx, base+"/restored", billing.TemplateDunningRestored); err != nil {
					workflow.GetLogger(ctx).Error("access-restored notice failed", "invoice", d.In.InvoiceID, "err", err)
				}
			}
		}
		d.Status.AccountStatus = StatusActive
		d.tellCustomer(ctx, StatusActive)
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, SearchStatus.ValueSet(d.Status.Outcome))
	workflow.SetCurrentDetails(ctx, "Dunning of "+d.In.InvoiceID+" ended: "+d.Status.Outcome)
	return d.queryAt(workflow.Now(ctx))
}

// describe shows the next step in the UI.
func (d *dunning) describe(ctx workflow.Context) {
	st, _ := d.queryAt(workflow.Now(ctx))
	msg := fmt.Sprintf("Invoice %s of %s: step %d of %d", d.In.InvoiceID, d.In.CustomerID, st.Step, st.StepsTotal)
	switch {
	case st.Paused:
		msg += ", paused by dispute"
	case st.NextActionAt != nil:
		msg += fmt.Sprintf(", %s at %s", st.NextAction, st.NextActionAt.Format(time.RFC3339))
	default:
		msg += ", waiting for payment"
	}
	workflow.SetCurrentDetails(ctx, msg)
}

// queryAt is the status at now (the workflow clock).
func (d *dunning) queryAt(now time.Time) (DunningStatus, error) {
	st := d.Status
	st.StepsTotal = len(d.Policy.Steps)
	st.Paused = d.paused()
	st.Elapsed = billing.Duration(d.elapsed(now))
	st.OpenDisputes = nil
	//workflowcheck:ignore the ids are sorted below, so the order of iteration does not matter
	for id := range d.Disputes {
		st.OpenDisputes = append(st.OpenDisputes, id)
	}
	sort.Strings(st.OpenDisputes)
	st.Done = append([]DunningStepRecord(nil), d.Status.Done...)
	if st.Step < st.StepsTotal {
		s := d.Policy.Steps[st.Step]
		st.NextAction = s.Action
		if !st.Paused && st.Outcome == DunningRunning {
			at := d.TickAt.Add(time.Duration(s.After) - d.Elapsed)
			st.NextActionAt = &at
		}
	}
	return st, nil
}
