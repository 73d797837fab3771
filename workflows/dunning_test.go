package workflows

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/billcycle/billcycle/activities"
	"github.com/billcycle/billcycle/billing"
)

var dunningT0 = time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)

// sent is one thing the sequence did, at its offset from the start.
type sent struct {
	What string // notice:<template>, sales, access:revoked, access:granted, signal:<workflow>:<name>[:<status>]
	Key  string
	At   time.Duration
}

func (s sent) String() string { return fmt.Sprintf("%s@%s", s.What, s.At) }

// dunningHarness runs Dunning in the time-skipping environment with
// recording fakes of the notice activities and of the customer workflow.
type dunningHarness struct {
	t       *testing.T
	env     *testsuite.TestWorkflowEnvironment
	mu      sync.Mutex
	sent    []sent
	keys    map[string]bool
	revoked bool
}

func newDunningHarness(t *testing.T, known string, policy billing.Policy) *dunningHarness {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	h := &dunningHarness{t: t, env: s.NewTestWorkflowEnvironment(), keys: map[string]bool{}}
	env := h.env
	env.SetStartTime(dunningT0)
	env.RegisterActivity(da)
	env.RegisterActivity(na)
	env.OnActivity(na.SendNotice, mock.Anything, mock.Anything).Return(func(_ context.Context, n activities.Notice) (activities.SentNotice, error) {
		dup := h.record(fmt.Sprint("notice:", n.Data["template"]), n.DedupeKey)
		if n.CustomerID != "acme" || n.Kind != NoticeKindDunning || n.Subject == "" || !strings.Contains(n.Text, "inv_1") {
			t.Errorf("SendNotice(%+v): want customer acme, kind dunning, a subject and the invoice in the text", n)
		}
		return activities.SentNotice{DedupeKey: n.DedupeKey, Duplicate: dup}, nil
	})
	env.OnActivity(na.SetAccess, mock.Anything, mock.Anything).Return(func(_ context.Context, c activities.AccessChange) (bool, error) {
		h.mu.Lock()
		changed := h.revoked == c.Granted
		h.revoked = !c.Granted
		h.mu.Unlock()
		if changed {
			state := "revoked"
			if c.Granted {
				state = "granted"
			}
			h.record("access:"+state, c.DedupeKey)
		}
		return changed, nil
	})
	env.OnActivity(na.NotifySales, mock.Anything, mock.Anything).Return(func(_ context.Context, n activities.SalesNotice) error {
		h.record("sales", n.DedupeKey)
		if !strings.Contains(n.Text, "inv_1") {
			t.Errorf("NotifySales text %q does not name the invoice", n.Text)
		}
		return nil
	})
	env.OnActivity(da.DunningInvoiceStatus, mock.Anything, mock.Anything).Return(known, nil)
	env.OnActivity(da.LoadDunningPolicy, mock.Anything, "pro").Return(policy, nil)
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(
		func(_, workflowID, _, name string, arg any) error {
			what := "signal:" + workflowID + ":" + name
			if st, ok := arg.(AccountStatus); ok {
				what += ":" + st.Status
				if st.InvoiceID != "inv_1" {
					t.Errorf("account-status invoice = %q, want inv_1", st.InvoiceID)
				}
			}
			h.record(what, "")
			return nil
		})
	return h
}

// record notes one effect and reports whether its dedupe key was used before.
func (h *dunningHarness) record(what, key string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if key != "" && h.keys[key] {
		return true
	}
	if key != "" {
		h.keys[key] = true
	}
	h.sent = append(h.sent, sent{What: what, Key: key, At: h.env.Now().Sub(dunningT0)})
	return false
}

// at schedules fn at offset d from the start.
func (h *dunningHarness) at(d time.Duration, fn func()) { h.env.RegisterDelayedCallback(fn, d) }

func (h *dunningHarness) signal(d time.Duration, name string, arg any) {
	h.at(d, func() { h.env.SignalWorkflow(name, arg) })
}

func (h *dunningHarness) run(in DunningInput) DunningStatus {
	h.t.Helper()
	h.env.ExecuteWorkflow(Dunning, in)
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("Dunning did not complete")
	}
	var st DunningStatus
	if err := h.env.GetWorkflowResult(&st); err != nil {
		h.t.Fatalf("Dunning failed: %v", err)
	}
	return st
}

func (h *dunningHarness) query() DunningStatus {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(QueryDunningStatus)
	if err != nil {
		h.t.Fatalf("query status: %v", err)
	}
	var st DunningStatus
	if err := v.Get(&st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

func input() DunningInput {
	return DunningInput{InvoiceID: "inv_1", StripeInvoiceID: "in_1", CustomerID: "acme", PlanID: "pro",
		StartedAt: dunningT0, Reason: DunningReasonPaymentFailed, AmountDue: 4200, Currency: "usd"}
}

const day = 24 * time.Hour

var (
	reminder      = sent{What: "notice:" + billing.TemplateDunningReminder, Key: "dunning/inv_1/step-0"}
	second        = sent{What: "notice:" + billing.TemplateDunningSecondReminder, Key: "dunning/inv_1/step-1", At: 3 * day}
	final         = sent{What: "notice:" + billing.TemplateDunningFinalWarning, Key: "dunning/inv_1/step-2", At: 7 * day}
	manager       = sent{What: "sales", Key: "dunning/inv_1/step-3", At: 7 * day}
	suspend       = sent{What: "access:revoked", Key: "dunning/inv_1/step-4", At: 14 * day}
	suspendNotice = sent{What: "notice:" + billing.TemplateDunningSuspended, Key: "dunning/inv_1/step-4/notice", At: 14 * day}
	suspended     = sent{What: "signal:customer/acme:account-status:suspended", At: 14 * day}
	cancel        = sent{What: "signal:customer/acme:cancel", At: 30 * day}
	cancelNotice  = sent{What: "notice:" + billing.TemplateDunningCanceled, Key: "dunning/inv_1/step-5/notice", At: 30 * day}
	pastDue       = sent{What: "signal:customer/acme:account-status:past_due"}
)

func at(s sent, d time.Duration) sent { s.At = d; return s }

func checkSent(t *testing.T, h *dunningHarness, want []sent) {
	t.Helper()
	if !slices.Equal(h.sent, want) {
		t.Errorf("the sequence did\n  %v\nwant\n  %v", h.sent, want)
	}
}

func TestDunningWalksTheWholeDefaultPolicy(t *testing.T) {
	h := newDunningHarness(t, "", billing.DefaultPolicy())
	h.at(5*day, func() {
		st := h.query()
		if st.Step != 2 || st.NextAction != billing.ActionEmailNotice || st.NextActionAt == nil ||
			!st.NextActionAt.Equal(dunningT0.Add(7*day)) || st.Paused || st.AccountStatus != StatusPastDue {
			t.Errorf("status on day 5 = %+v, want step 2 (final warning) at day 7, past_due", st)
		}
	})
	h.at(20*day, func() {
		if st := h.query(); st.AccountStatus != StatusSuspended || !st.Suspended || st.Step != 5 {
			t.Errorf("status on day 20 = %+v, want suspended at step 5", st)
		}
	})
	st := h.run(input())
	checkSent(t, h, []sent{pastDue, reminder, second, final, manager, suspend, suspended, suspendNotice, cancel, cancelNotice})
	if st.Outcome != DunningExhausted || st.Step != 6 || len(st.Done) != 6 || st.PolicyID != "default" {
		t.Errorf("result = %+v, want exhausted after 6 steps of the default policy", st)
	}
	if end := h.env.Now().Sub(dunningT0); end != 30*day+DunningSettleWindow {
		t.Errorf("sequence ended after %s, want the settle window after day 30 (%s)", end, 30*day+DunningSettleWindow)
	}
}

func TestDunningStopsAtPaymentAtEachStage(t *testing.T) {
	active := func(d time.Duration) sent { return sent{What: "signal:customer/acme:account-status:active", At: d} }
	restored := func(d time.Duration) []sent {
		return []sent{
			{What: "access:granted", Key: "dunning/inv_1/restore", At: d},
			{What: "notice:" + billing.TemplateDunningRestored, Key: "dunning/inv_1/restored", At: d},
			active(d),
		}
	}
	tests := []struct {
		name string
		paid time.Duration
		want []sent
	}{
		{"after the reminder", day, []sent{pastDue, reminder, active(day)}},
		{"after the second reminder", 5 * day, []sent{pastDue, reminder, second, active(5 * day)}},
		{"after the final warning", 10 * day, []sent{pastDue, reminder, second, final, manager, active(10 * day)}},
		{"while suspended", 20 * day, append([]sent{pastDue, reminder, second, final, manager, suspend, suspended, suspendNotice},
			restored(20*day)...)},
		{"after cancel", 40 * day, append([]sent{pastDue, reminder, second, final, manager, suspend, suspended, suspendNotice, cancel, cancelNotice},
			restored(40*day)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newDunningHarness(t, "", billing.DefaultPolicy())
			h.signal(tt.paid, SignalPaid, InvoicePaid{At: dunningT0.Add(tt.paid)})
			h.signal(tt.paid+time.Minute, SignalPaid, InvoicePaid{}) // a redelivery after the end changes nothing
			st := h.run(input())
			checkSent(t, h, tt.want)
			if st.Outcome != DunningPaid || st.Suspended || st.AccountStatus != StatusActive {
				t.Errorf("result = %+v, want paid, access not suspended, account active", st)
			}
			if end := h.env.Now().Sub(dunningT0); end != tt.paid {
				t.Errorf("sequence ended at %s, want at the payment (%s)", end, tt.paid)
			}
		})
	}
}

func TestDunningDisputePausesTheClock(t *testing.T) {
	h := newDunningHarness(t, "", billing.DefaultPolicy())
	h.signal(day, SignalDisputeOpened, Dispute{DisputeID: "dp_1", At: dunningT0.Add(day)})
	h.at(6*day, func() {
		st := h.query()
		if !st.Paused || st.NextActionAt != nil || !slices.Equal(st.OpenDisputes, []string{"dp_1"}) || st.Elapsed != billing.Duration(day) {
			t.Errorf("status during the dispute = %+v, want paused at 1 day with dp_1 open", st)
		}
	})
	h.signal(11*day, SignalDisputeClosed, Dispute{DisputeID: "dp_1", At: dunningT0.Add(11 * day)})
	h.signal(15*day, SignalPaid, InvoicePaid{})
	h.run(input())
	// Ten days paused: the second reminder (day 3) comes on day 13; the final warning (day 7) would come on day 17.
	checkSent(t, h, []sent{pastDue, reminder, at(second, 13*day), {What: "signal:customer/acme:account-status:active", At: 15 * day}})
}

func TestDunningDisputeEventsOutOfOrder(t *testing.T) {
	h := newDunningHarness(t, "", billing.DefaultPolicy())
	// The close (created on day 2) is delivered before the open (created on day 1): the clock keeps running.
	h.signal(day+time.Hour, SignalDisputeClosed, Dispute{DisputeID: "dp_1", At: dunningT0.Add(2 * day)})
	h.signal(day+2*time.Hour, SignalDisputeOpened, Dispute{DisputeID: "dp_1", At: dunningT0.Add(day)})
	h.at(2*day, func() {
		if st := h.query(); st.Paused {
			t.Errorf("status = %+v, want not paused by a dispute already closed", st)
		}
	})
	h.signal(4*day, SignalPaid, InvoicePaid{})
	h.run(input())
	checkSent(t, h, []sent{pastDue, reminder, second, {What: "signal:customer/acme:account-status:active", At: 4 * day}})
}

func TestDunningVoidStopsSilently(t *testing.T) {
	tests := []struct {
		name   string
		voided time.Duration
		want   []sent
	}{
		{"before suspension", 4 * day, []sent{pastDue, reminder, second, {What: "signal:customer/acme:account-status:active", At: 4 * day}}},
		{"after suspension: access back, no thank-you notice", 15 * day, []sent{pastDue, reminder, second, final, manager, suspend, suspended, suspendNotice,
			{What: "access:granted", Key: "dunning/inv_1/restore", At: 15 * day}, {What: "signal:customer/acme:account-status:active", At: 15 * day}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newDunningHarness(t, "", billing.DefaultPolicy())
			h.signal(tt.voided, SignalVoided, InvoiceSettled{At: dunningT0.Add(tt.voided)})
			st := h.run(input())
			checkSent(t, h, tt.want)
			if st.Outcome != DunningVoided {
				t.Errorf("outcome = %q, want voided", st.Outcome)
			}
		})
	}
}

func TestDunningPolicyChange(t *testing.T) {
	h := newDunningHarness(t, "", billing.DefaultPolicy())
	faster := billing.Policy{ID: "faster", Steps: []billing.Step{
		{After: 0, Action: billing.ActionEmailNotice, Template: "r"},
		{After: billing.Duration(2 * day), Action: billing.ActionEmailNotice, Template: "w"},
		{After: billing.Duration(4 * day), Action: billing.ActionSuspendAccess},
	}}
	h.signal(day, SignalPolicyChanged, faster)
	h.signal(day+time.Hour, SignalPolicyChanged, billing.Policy{ID: "broken"}) // invalid: ignored
	h.signal(5*day, SignalPaid, InvoicePaid{})
	st := h.run(input())
	// Step 0 of the new policy is in the past (not re-sent); its steps use new dedupe keys.
	checkSent(t, h, []sent{pastDue, reminder,
		{What: "notice:w", Key: "dunning/inv_1/policy-1/step-1", At: 2 * day},
		{What: "access:revoked", Key: "dunning/inv_1/policy-1/step-2", At: 4 * day},
		{What: "signal:customer/acme:account-status:suspended", At: 4 * day},
		{What: "access:granted", Key: "dunning/inv_1/restore", At: 5 * day},
		{What: "notice:" + billing.TemplateDunningRestored, Key: "dunning/inv_1/restored", At: 5 * day},
		{What: "signal:customer/acme:account-status:active", At: 5 * day},
	})
	if st.PolicyID != "faster" || st.PolicyRevision != 1 {
		t.Errorf("result = %+v, want policy faster at revision 1", st)
	}
}

func TestDunningOfAnInvoiceAlreadySettled(t *testing.T) {
	for _, known := range []string{"paid", "void"} {
		t.Run(known, func(t *testing.T) {
			h := newDunningHarness(t, known, billing.DefaultPolicy())
			st := h.run(input())
			checkSent(t, h, nil)
			if st.Outcome != DunningAlreadySettled {
				t.Errorf("outcome = %q, want %q", st.Outcome, DunningAlreadySettled)
			}
		})
	}
}

func TestDunningClockStartsAtTheDueDate(t *testing.T) {
	h := newDunningHarness(t, "", billing.DefaultPolicy())
	in := input()
	in.Reason = DunningReasonPastDue
	in.StartedAt = dunningT0.Add(-2 * day) // the due date passed two days before the workflow started
	h.signal(2*day, SignalPaid, InvoicePaid{})
	h.signal(time.Hour, SignalPaymentFailed, PaymentFailed{AttemptCount: 3})
	h.at(2*time.Hour, func() {
		if st := h.query(); st.FailedAttempts != 3 {
			t.Errorf("failed attempts = %d, want 3", st.FailedAttempts)
		}
	})
	h.run(in)
	checkSent(t, h, []sent{pastDue, reminder, at(second, day), {What: "signal:customer/acme:account-status:active", At: 2 * day}})
}

func TestDunningMarksUncollectibleWithoutStoppingOnItsOwnEcho(t *testing.T) {
	h := newDunningHarness(t, "", billing.Policy{ID: "p", Steps: []billing.Step{
		{After: 0, Action: billing.ActionEmailNotice, Template: "r"},
		{After: billing.Duration(day), Action: billing.ActionMarkUncollectible},
		{After: billing.Duration(2 * day), Action: billing.ActionEmailNotice, Template: "after"},
	}})
	h.env.OnActivity(da.MarkInvoiceUncollectible, mock.Anything, mock.Anything).Return(func(context.Context, activities.MarkUncollectibleInput) error {
		h.record("uncollectible", "dunning/inv_1/step-1")
		return nil
	})
	h.signal(day+time.Minute, SignalMarkedUncollectible, InvoiceSettled{})
	h.signal(3*day, SignalPaid, InvoicePaid{})
	h.run(input())
	checkSent(t, h, []sent{pastDue, {What: "notice:r", Key: "dunning/inv_1/step-0"},
		{What: "uncollectible", Key: "dunning/inv_1/step-1", At: day},
		{What: "notice:after", Key: "dunning/inv_1/step-2", At: 2 * day},
		{What: "signal:customer/acme:account-status:active", At: 3 * day}})
}
