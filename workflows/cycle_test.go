package workflows

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/billcycle/billcycle/billing"
)

func alertOn(id, threshold string, actions ...billing.AlertAction) billing.Alert {
	return billing.Alert{ID: id, Meter: "requests", CustomerID: "acme", Threshold: dec(threshold), Direction: billing.Above,
		Actions: actions, CreatedAt: periodStart.Add(-time.Hour)}
}

func TestAlertFiresOncePerCycle(t *testing.T) {
	w := newWorld(t, activeSub("api"), billing.Thresholds{})
	w.alerts = []billing.Alert{alertOn("a1", "100", billing.ActionEmail, billing.ActionNotifySales, billing.ActionRevokeAccess)}
	w.use(dayAt(2, 0), "requests", "150")
	w.use(dayAt(5, 0), "requests", "300")
	w.use(dayAt(9, 0), "requests", "1")
	next, _ := w.run(signup())
	if next == nil {
		t.Fatal("workflow ended, want continue-as-new at period end")
	}
	want := []string{"customer/acme/2026-11-01/alert/a1/email"}
	if got := w.noticeKeys("usage_alert"); !slices.Equal(got, want) {
		t.Errorf("alert notices = %v, want %v", got, want)
	}
	if len(w.sales) != 1 || w.sales[0].DedupeKey != "customer/acme/2026-11-01/alert/a1/sales" {
		t.Errorf("sales notices = %+v, want one keyed .../alert/a1/sales", w.sales)
	}
	// Access revoked once by the alert, restored once when the next period starts.
	if len(w.access) != 2 || w.access[0].Granted || !w.access[1].Granted {
		t.Errorf("access changes = %+v, want revoke then restore", w.access)
	}
	if next.Carried.AccessRevokedBy != "" || !next.Carried.Period.Start.Equal(periodStart.AddDate(0, 1, 0)) {
		t.Errorf("next run: access revoked by %q, period %v; want restored, December", next.Carried.AccessRevokedBy, next.Carried.Period)
	}
	if st := next.Carried.AlertStates["a1"]; st.Fired != 0 || st.LastFired.IsZero() {
		t.Errorf("next run alert state = %+v, want re-armed (fired 0) with last fired kept", st)
	}
}

func TestAlertCooldownRefire(t *testing.T) {
	w := newWorld(t, activeSub("api"), billing.Thresholds{})
	rolling := alertOn("r1", "100", billing.ActionEmail)
	rolling.Window = billing.Duration(24 * time.Hour)
	rolling.Cooldown = billing.Duration(48 * time.Hour)
	w.alerts = []billing.Alert{rolling}
	w.use(dayAt(2, 10), "requests", "150") // fires
	w.use(dayAt(2, 11), "requests", "150") // within the cool-down; out of the window a day later
	w.use(dayAt(4, 12), "requests", "150") // cool-down over: fires again
	w.use(dayAt(4, 13), "requests", "150") // cool-down again
	next, _ := w.run(signup())
	if next == nil {
		t.Fatal("workflow ended, want continue-as-new")
	}
	want := []string{"customer/acme/2026-11-01/alert/r1/2/email", "customer/acme/2026-11-01/alert/r1/email"}
	if got := w.noticeKeys("usage_alert"); !slices.Equal(got, want) {
		t.Errorf("rolling alert notices = %v, want %v", got, want)
	}
}

func TestAllCustomersAlertWithMetadataFilter(t *testing.T) {
	w := newWorld(t, activeSub("api"), billing.Thresholds{})
	notEnterprise := alertOn("all-not-enterprise", "100", billing.ActionEmail)
	notEnterprise.CustomerID, notEnterprise.CustomerFilter = "", map[string]string{"plan": "!enterprise"}
	gold := alertOn("all-gold", "100", billing.ActionEmail)
	gold.CustomerID, gold.CustomerFilter = "", map[string]string{"tier": "gold"}
	silver := alertOn("all-silver", "100", billing.ActionEmail)
	silver.CustomerID, silver.CustomerFilter = "", map[string]string{"tier": "silver"}
	w.alerts = []billing.Alert{notEnterprise, gold, silver}
	w.use(dayAt(3, 0), "requests", "500")
	w.run(signup())
	want := []string{"customer/acme/2026-11-01/alert/all-not-enterprise/email", "customer/acme/2026-11-01/alert/all-silver/email"}
	if got := w.noticeKeys("usage_alert"); !slices.Equal(got, want) {
		t.Errorf("notices = %v, want %v (the gold-only alert must not fire for a silver customer)", got, want)
	}
}

func TestUsageBeforeAlertCreationIgnored(t *testing.T) {
	w := newWorld(t, activeSub("api"), billing.Thresholds{})
	w.use(dayAt(2, 0), "requests", "90")
	created := alertOn("late", "50", billing.ActionEmail)
	created.CreatedAt = time.Time{} // the workflow stamps it
	var upErr error
	w.update(dayAt(3, 0), UpdateUpsertAlert, created, &upErr)
	w.use(dayAt(4, 0), "requests", "40") // 40 since creation: below 50
	var before []string
	w.at(dayAt(5, 0), func() { before = w.noticeKeys("usage_alert") })
	w.use(dayAt(6, 0), "requests", "20") // 60 since creation
	w.run(signup())
	if upErr != nil {
		t.Fatalf("upsert-alert: %v", upErr)
	}
	if len(before) != 0 {
		t.Errorf("notices after 40 units since creation = %v, want none (90 units came before the alert)", before)
	}
	if got := w.noticeKeys("usage_alert"); len(got) != 1 {
		t.Errorf("notices after 60 units since creation = %v, want one", got)
	}
}

func TestThresholdsIssueExactlyOneEarlyInvoice(t *testing.T) {
	tests := []struct {
		name string
		th   billing.Thresholds
		// usage crosses the threshold once; wantEarly is the early invoice total.
		wantEarly int64
	}{
		// 1000 flat + 450 × 10 = 5500 ≥ 5000.
		{"monetary", billing.Thresholds{AmountGTE: 5000}, 5500},
		// 450 requests ≥ 400.
		{"usage", billing.Thresholds{UsageGTE: map[string]decimalT{"requests": dec("400")}}, 5500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, activeSub("api"), tt.th)
			w.use(dayAt(3, 0), "requests", "200")
			w.use(dayAt(3, 6), "requests", "250")
			w.use(dayAt(10, 0), "requests", "100") // below another threshold's worth
			next, _ := w.run(signup())
			if next == nil {
				t.Fatal("workflow ended, want continue-as-new")
			}
			got := w.invoiceTotals()
			early := got["customer/acme/2026-11-01/threshold-1"]
			if early != tt.wantEarly || len(got) != 2 {
				t.Errorf("invoices = %v, want threshold-1 of %d and the cycle invoice", got, tt.wantEarly)
			}
			if n := w.noticeKeys("threshold_invoice"); len(n) != 1 {
				t.Errorf("threshold notices = %v, want one", n)
			}
			// The cycle invoice nets the early one: together they bill 1000 + 550 × 10.
			if sum := early + got["customer/acme/2026-11-01/cycle"]; sum != 6500 {
				t.Errorf("early + cycle = %d, want 6500 (Rate over the whole cycle)", sum)
			}
		})
	}
}

func TestThresholdsSuppressedInTrialAndLastDay(t *testing.T) {
	trialEnd := dayAt(10, 0)
	tests := []struct {
		name  string
		sub   func() *billing.Subscription
		usage []time.Time
		// want is every invoice by id.
		want map[string]int64
	}{
		{"trial", func() *billing.Subscription { s := activeSub("api"); s.TrialEnd = &trialEnd; return s },
			[]time.Time{dayAt(3, 0)}, // 1000 requests during the trial: never billed
			map[string]int64{"customer/acme/2026-11-01/cycle": 1000}},
		{"last 24 hours", func() *billing.Subscription { return activeSub("api") },
			[]time.Time{dayAt(30, 2)}, // 1000 requests on the last day: the cycle invoice bills them
			map[string]int64{"customer/acme/2026-11-01/cycle": 11000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.sub(), billing.Thresholds{AmountGTE: 2000})
			for _, at := range tt.usage {
				w.use(at, "requests", "1000")
			}
			w.run(signup())
			got := w.invoiceTotals()
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("invoices = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCycleEndNetsSeveralEarlyInvoices(t *testing.T) {
	w := newWorld(t, activeSub("api"), billing.Thresholds{AmountGTE: 3000})
	for d := 2; d <= 20; d += 2 {
		w.use(dayAt(d, 0), "requests", "100") // 1000 requests in all
	}
	w.run(signup())
	got := w.invoiceTotals()
	var sum int64
	early := 0
	for id, total := range got {
		sum += total
		if strings.Contains(id, "/threshold-") {
			early++
		}
	}
	// 1000 flat + 1000 × 10 = 11000 over the cycle.
	if sum != 11000 || early < 2 {
		t.Errorf("invoices = %v: sum %d with %d early, want 11000 in all with at least 2 early", got, sum, early)
	}
	if got["customer/acme/2026-11-01/cycle"] <= 0 {
		t.Errorf("cycle invoice = %d, want the positive remainder", got["customer/acme/2026-11-01/cycle"])
	}
}

func TestPlanChangeMidCycle(t *testing.T) {
	w := newWorld(t, activeSub("api"), billing.Thresholds{})
	w.use(dayAt(3, 0), "requests", "100")
	var upErr error
	w.update(dayAt(10, 0), UpdateChangePlan, ChangePlanRequest{PlanID: "scale"}, &upErr)
	next, _ := w.run(signup())
	if upErr != nil {
		t.Fatalf("change-plan: %v", upErr)
	}
	if next == nil {
		t.Fatal("workflow ended, want continue-as-new into the new plan")
	}
	// Old plan: 1000 flat + 100 × 10.
	if got := w.invoiceTotals(); len(got) != 1 || got["customer/acme/2026-11-01/cycle"] != 2000 {
		t.Errorf("invoices at the change = %v, want the old plan's 2000 for November so far", got)
	}
	st := next.Carried
	if st.Sub.PlanID != "scale" || st.Plan.ID != "scale" || !st.Period.Start.Equal(dayAt(10, 0)) || !st.Period.End.Equal(dayAt(10, 0).AddDate(0, 1, 0)) {
		t.Errorf("next run: plan %s/%s period %v, want scale from %v for a month", st.Sub.PlanID, st.Plan.ID, st.Period, dayAt(10, 0))
	}

	// The next run bills the new plan from the change.
	w2 := newWorld(t, st.Sub, st.Thresholds)
	w2.env.SetStartTime(dayAt(10, 0))
	w2.events = []event{{at: dayAt(3, 0), meter: "requests", qty: dec("100")}}
	w2.at2(dayAt(12, 0), func() { w2.addEvent(dayAt(12, 0), "200") })
	w2.env.ExecuteWorkflow(BillingCycle, *next)
	if got := w2.invoiceTotals(); got["customer/acme/2026-11-10/cycle"] != 1000 {
		t.Errorf("new plan invoices = %v, want 200 × 5 = 1000 for the period from the change", got)
	}
}

func TestContinueAsNewCarriesState(t *testing.T) {
	w := newWorld(t, activeSub("api"), billing.Thresholds{AmountGTE: 3000})
	w.alerts = []billing.Alert{alertOn("a1", "100", billing.ActionEmail)}
	w.use(dayAt(2, 0), "requests", "250") // fires a1, early invoice 3500
	w.at(dayAt(4, 0), func() { w.env.SetContinueAsNewSuggested(true) })
	next, _ := w.run(signup())
	if next == nil {
		t.Fatal("workflow ended, want continue-as-new when suggested")
	}
	st := next.Carried
	if !st.Period.Start.Equal(periodStart) || st.EarlyInvoices != 1 || st.LastIssued.Total != 3500 || st.AlertStates["a1"].Fired != 1 ||
		st.StripeCustomerID != "cus_1" || st.Sub == nil || st.Runs != 1 {
		t.Fatalf("carried state = period %v early %d last issued %d alert %+v stripe %q runs %d; want November, 1, 3500, fired, cus_1, 1",
			st.Period, st.EarlyInvoices, st.LastIssued.Total, st.AlertStates["a1"], st.StripeCustomerID, st.Runs)
	}

	// The next run neither fires a1 again nor re-bills the early invoice.
	w2 := newWorld(t, st.Sub, st.Thresholds)
	w2.env.SetStartTime(dayAt(4, 0))
	w2.alerts = w.alerts
	w2.events = w.events
	w2.at2(dayAt(6, 0), func() { w2.addEvent(dayAt(6, 0), "50") })
	w2.env.ExecuteWorkflow(BillingCycle, *next)
	if got := w2.noticeKeys("usage_alert"); len(got) != 0 {
		t.Errorf("alert notices after continue-as-new = %v, want none", got)
	}
	if got := w2.invoiceTotals(); len(got) != 1 || got["customer/acme/2026-11-01/cycle"] != 500 || w2.activityRun["EnsureStripeCustomer"] != 0 {
		t.Errorf("invoices after continue-as-new = %v (onboarding ran %d times), want only the cycle invoice of 50 × 10 = 500",
			got, w2.activityRun["EnsureStripeCustomer"])
	}
}

func TestCancellation(t *testing.T) {
	w := newWorld(t, activeSub("api"), billing.Thresholds{})
	w.use(dayAt(3, 0), "requests", "100")
	w.at(dayAt(8, 0), func() { w.env.SignalWorkflow(SignalCancel, nil) })
	next, final := w.run(signup())
	if next != nil {
		t.Fatal("workflow continued as new, want it to end on cancel")
	}
	if final.Status != StatusCanceled {
		t.Errorf("final status = %q, want canceled", final.Status)
	}
	if got := w.invoiceTotals(); len(got) != 1 || got["customer/acme/2026-11-01/final"] != 2000 {
		t.Errorf("invoices = %v, want a final invoice of 2000 for the usage so far", got)
	}
}

func TestWaitsForSubscription(t *testing.T) {
	w := newWorld(t, nil, billing.Thresholds{})
	in := signup()
	in.Plan = "" // no plan at signup: wait for one
	var upErr error
	w.at(dayAt(2, 0), func() {
		res, err := w.env.QueryWorkflow(QueryStatus)
		var st CycleStatus
		if err == nil {
			err = res.Get(&st)
		}
		if err != nil || st.Status != StatusActive || st.PeriodEnd.IsZero() == false {
			t.Errorf("status before a subscription = %+v (%v), want active with no period", st, err)
		}
	})
	w.update(dayAt(3, 0), UpdateChangePlan, ChangePlanRequest{PlanID: "api"}, &upErr)
	next, _ := w.run(in)
	if upErr != nil || next == nil || next.Carried.Sub == nil || next.Carried.Sub.PlanID != "api" {
		t.Fatalf("after change-plan: err %v next %+v, want continue-as-new on plan api", upErr, next)
	}
	if got := w.invoiceTotals(); len(got) != 0 {
		t.Errorf("invoices = %v, want none before the first period", got)
	}
}

func TestUpdateValidators(t *testing.T) {
	w := newWorld(t, activeSub("api"), billing.Thresholds{})
	var errs [4]error
	w.update(dayAt(2, 0), UpdateSetThresholds, billing.Thresholds{AmountGTE: 900}, &errs[0]) // not above the 1000 flat fee
	w.update(dayAt(2, 1), UpdateChangePlan, ChangePlanRequest{PlanID: "api"}, &errs[1])      // already on it
	for i := range billing.MaxAlertsPerMeter {
		var ignore error
		w.update(dayAt(3, 0).Add(time.Duration(i)*time.Minute), UpdateUpsertAlert, alertOn(fmt.Sprintf("a%02d", i), "100", billing.ActionEmail), &ignore)
	}
	w.update(dayAt(4, 0), UpdateUpsertAlert, alertOn("one-too-many", "100", billing.ActionEmail), &errs[2])
	w.update(dayAt(4, 1), UpdateSetThresholds, billing.Thresholds{AmountGTE: 1500}, &errs[3])
	w.at(dayAt(5, 0), func() { w.env.SignalWorkflow(SignalCancel, nil) })
	_, final := w.run(signup())
	for i, wantErr := range []bool{true, true, true, false} {
		if (errs[i] != nil) != wantErr {
			t.Errorf("update %d: err = %v, want error %v", i, errs[i], wantErr)
		}
	}
	if len(final.Alerts) != billing.MaxAlertsPerMeter || final.Thresholds.AmountGTE != 1500 {
		t.Errorf("final: %d alerts, amount_gte %d; want %d and 1500", len(final.Alerts), final.Thresholds.AmountGTE, billing.MaxAlertsPerMeter)
	}
}

func TestAccountStatusSignal(t *testing.T) {
	w := newWorld(t, activeSub("api"), billing.Thresholds{})
	var seen []string
	for i, s := range []string{StatusPastDue, StatusSuspended, StatusActive} {
		at := dayAt(2+i, 0)
		w.at(at, func() { w.env.SignalWorkflow(SignalAccountStatus, AccountStatus{Status: s, InvoiceID: "inv1"}) })
		w.at(at.Add(time.Minute), func() {
			res, err := w.env.QueryWorkflow(QueryStatus)
			var st CycleStatus
			if err == nil {
				err = res.Get(&st)
			}
			seen = append(seen, st.Status)
		})
	}
	w.at(dayAt(6, 0), func() { w.env.SignalWorkflow(SignalCancel, nil) })
	w.run(signup())
	if want := []string{StatusPastDue, StatusSuspended, StatusActive}; !slices.Equal(seen, want) {
		t.Errorf("statuses = %v, want %v", seen, want)
	}
}

func TestDueDatePassingStartsDunning(t *testing.T) {
	w := newWorld(t, activeSub("api"), billing.Thresholds{AmountGTE: 3000})
	w.daysUntilDue = 14
	w.use(dayAt(3, 0), "requests", "300") // threshold-1 of 4000, due 14 days later
	w.use(dayAt(10, 0), "requests", "50") // left for the cycle invoice
	next, _ := w.run(signup())
	if next == nil {
		t.Fatal("workflow ended, want continue-as-new")
	}
	if len(w.dunning) != 1 || w.dunning[0].InvoiceID != "customer/acme/2026-11-01/threshold-1" ||
		w.dunning[0].Reason != DunningReasonPastDue || w.dunning[0].AmountDue != 4000 || w.dunningAt[0].Before(w.dunning[0].StartedAt) {
		t.Fatalf("dunning started = %+v at %v, want threshold-1's past_due dunning at its due date", w.dunning, w.dunningAt)
	}
	if due := w.dunning[0].StartedAt.Sub(dayAt(3, 0)); due < 14*24*time.Hour || due > 14*24*time.Hour+2*time.Hour {
		t.Errorf("dunning clock starts %v after the usage, want the 14-day due date", due)
	}
	// The cycle invoice is due in December: the next run carries it.
	if d := next.Carried.DueInvoices; len(d) != 1 || d[0].InvoiceID != "customer/acme/2026-11-01/cycle" {
		t.Errorf("carried due invoices = %+v, want the cycle invoice", d)
	}
}

func TestCanceledCustomerStillDunned(t *testing.T) {
	w := newWorld(t, activeSub("api"), billing.Thresholds{})
	w.daysUntilDue = 14
	w.use(dayAt(3, 0), "requests", "100")
	w.at(dayAt(8, 0), func() { w.env.SignalWorkflow(SignalCancel, nil) })
	_, final := w.run(signup())
	if final.Status != StatusCanceled || len(w.dunning) != 1 || w.dunning[0].InvoiceID != "customer/acme/2026-11-01/final" {
		t.Errorf("final %q, dunning %+v; want canceled and the final invoice dunned when due", final.Status, w.dunning)
	}
}
