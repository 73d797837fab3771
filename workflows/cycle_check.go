package workflows

import (
	"fmt"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
	"go.temporal.io/sdk/workflow"

	"github.com/billcycle/billcycle/activities"
	"github.com/billcycle/billcycle/billing"
)

// check reads usage, fires due alerts, issues an early invoice when a billing
// threshold is crossed, and sets the next check and the watch levels.
func (c *cycle) check(ctx workflow.Context) {
	now := workflow.Now(ctx)
	p := c.st.Period
	if c.alertsDue(now) {
		c.loadAlerts(ctx, now)
	}
	usage, err := c.readUsage(ctx, p.Start, p.End)
	if err != nil {
		c.fail(ctx, "read usage", err)
		c.st.NextCheck = now.Add(MaxCheckInterval)
		return
	}
	c.st.PrevUsage, c.st.PrevCheck = c.st.Usage, c.st.LastCheck
	c.st.Usage, c.st.LastCheck = usage, now
	moved := !sameLevels(c.st.PrevUsage, usage)
	c.st.Moved = moved

	prevAmount := billing.ThresholdAmount(billing.Increment(c.st.Billed, c.st.LastIssued))
	billUsage, billable := c.billableUsage(ctx, now, usage)
	if billable {
		c.st.Billed = billing.Rate(c.st.Plan, c.ratedSub(), p, billUsage)
	} else {
		c.st.Billed = billing.Invoice{}
	}

	live := c.evaluateAlerts(ctx, now, usage)

	suppressed := billing.ThresholdsSuppressed(*c.st.Sub, p, now)
	evalThresholds := billable && suppressed == "" && (c.st.Thresholds.AmountGTE > 0 || len(c.st.Thresholds.UsageGTE) > 0)
	if evalThresholds {
		c.evaluateThresholds(ctx, now, billUsage)
		if c.restart {
			return
		}
	}
	c.pace(ctx, now, moved, live, usage, billUsage, evalThresholds, prevAmount)
}

// readUsage returns the customer's total per meter for events in [from, to).
func (c *cycle) readUsage(ctx workflow.Context, from, to time.Time) (map[string]decimal.Decimal, error) {
	var out map[string]decimal.Decimal
	in := ReadUsageInput{CustomerID: c.in.CustomerID, From: from, To: to}
	err := workflow.ExecuteActivity(ctx, useAct.ReadUsage, in).Get(ctx, &out)
	return out, err
}

// billableUsage returns the usage billed this period at now: none during a
// trial, from the trial's end when it ended within the period.
func (c *cycle) billableUsage(ctx workflow.Context, now time.Time, usage map[string]decimal.Decimal) (map[string]decimal.Decimal, bool) {
	from, ok := c.billFrom()
	if !ok || now.Before(from) {
		return nil, false
	}
	if from.Equal(c.st.Period.Start) {
		return usage, true
	}
	u, err := c.readUsage(ctx, from, c.st.Period.End)
	if err != nil {
		c.fail(ctx, "read billable usage", err)
		return nil, false
	}
	return u, true
}

// alertsDue reports whether the alerts should be reloaded at now.
func (c *cycle) alertsDue(now time.Time) bool {
	since := now.Sub(c.st.AlertsLoadedAt)
	if c.st.AlertsLoadedAt.IsZero() || since >= AlertRefresh {
		return true
	}
	return since >= ActiveAlertRefresh && c.st.Moved
}

// loadAlerts merges the stored alerts (the customer's own and the matching
// all-customers ones) into the state. Alerts added by update stay until an
// update archives them.
func (c *cycle) loadAlerts(ctx workflow.Context, now time.Time) {
	var loaded []billing.Alert
	if err := workflow.ExecuteActivity(ctx, ntcAct.LoadAlerts, c.in.CustomerID).Get(ctx, &loaded); err != nil {
		c.fail(ctx, "load alerts", err)
		return
	}
	c.st.AlertsLoadedAt = now
	for _, al := range loaded {
		if al.Direction == "" {
			al.Direction = billing.Above
		}
		c.putAlert(al)
	}
}

// evaluateAlerts computes every live alert's value, fires the due ones and
// returns the live alerts.
func (c *cycle) evaluateAlerts(ctx workflow.Context, now time.Time, usage map[string]decimal.Decimal) []billing.Alert {
	p := c.st.Period
	md := c.metadata()
	var live []billing.Alert
	for _, id := range sortedKeys(c.st.Alerts) {
		if al := c.st.Alerts[id]; billing.AlertApplies(al, c.in.CustomerID, md) {
			live = append(live, al)
		}
	}
	if len(live) == 0 {
		return nil
	}
	spans := map[[2]time.Time]map[string]decimal.Decimal{{p.Start, p.End}: usage}
	total := func(from, to time.Time, meter string) (decimal.Decimal, bool) {
		k := [2]time.Time{from, to}
		u, ok := spans[k]
		if !ok {
			var err error
			if u, err = c.readUsage(ctx, from, to); err != nil {
				c.fail(ctx, "read alert usage", err)
				return decimal.Zero, false
			}
			spans[k] = u
		}
		return u[meter], true
	}
	values := make(map[string]decimal.Decimal, len(live))
	for _, al := range live {
		st := c.st.AlertStates[al.ID]
		if billing.AlertUsesBaseline(al) && !st.BaselineKnown {
			switch {
			case !al.CreatedAt.After(p.Start):
				st.Baseline = decimal.Zero
			case !al.CreatedAt.Before(now):
				st.Baseline = usage[al.Meter]
			default:
				b, ok := total(p.Start, al.CreatedAt, al.Meter)
				if !ok {
					continue
				}
				st.Baseline = b
			}
			st.BaselineKnown = true
			c.st.AlertStates[al.ID] = st
		}
		from, to := billing.AlertSpan(al, p, now)
		v, ok := total(from, to, al.Meter)
		if !ok {
			continue
		}
		values[al.ID] = billing.AlertValue(al, v, st)
	}
	if c.st.AlertValues == nil {
		c.st.AlertValues = map[string]decimal.Decimal{}
	}
	for _, id := range sortedKeys(values) {
		c.st.AlertValues[id] = values[id]
	}
	for _, f := range billing.EvaluateAlerts(live, c.st.AlertStates, values, now) {
		c.fire(ctx, f, now)
	}
	return live
}

// fire carries out an alert's actions, each with a dedupe key derived from
// the customer, the period, the alert and the firing's number in the cycle.
func (c *cycle) fire(ctx workflow.Context, f billing.AlertFiring, now time.Time) {
	al := f.Alert
	key := fmt.Sprintf("customer/%s/%s/alert/%s", c.in.CustomerID, periodKey(c.st.Period.Start), al.ID)
	if f.Seq > 1 {
		key += "/" + strconv.Itoa(f.Seq)
	}
	text := fmt.Sprintf("Usage alert %s: %s is %s, %s the threshold of %s.", al.ID, al.Meter, f.Value, al.Direction, al.Threshold)
	for _, act := range al.Actions {
		var err error
		switch act {
		case billing.ActionEmail:
			n := activities.Notice{DedupeKey: key + "/email", CustomerID: c.in.CustomerID, Kind: "usage_alert",
				Subject: "Usage alert: " + al.Meter, Text: text,
				Data: map[string]any{"alert_id": al.ID, "meter": al.Meter, "value": f.Value.String(),
					"threshold": al.Threshold.String(), "direction": string(al.Direction)}}
			err = workflow.ExecuteActivity(ctx, ntcAct.SendNotice, n).Get(ctx, nil)
		case billing.ActionRevokeAccess:
			ch := activities.AccessChange{DedupeKey: key + "/access", CustomerID: c.in.CustomerID, Granted: false, Reason: text}
			if err = workflow.ExecuteActivity(ctx, ntcAct.SetAccess, ch).Get(ctx, nil); err == nil {
				c.st.AccessRevokedBy = al.ID
			}
		case billing.ActionNotifySales:
			sn := activities.SalesNotice{DedupeKey: key + "/sales", CustomerID: c.in.CustomerID, Text: text}
			err = workflow.ExecuteActivity(ctx, ntcAct.NotifySales, sn).Get(ctx, nil)
		}
		if err != nil {
			c.fail(ctx, fmt.Sprintf("alert %s action %s", al.ID, act), err)
		}
	}
	st := c.st.AlertStates[al.ID]
	st.Fired, st.LastFired = f.Seq, now
	c.st.AlertStates[al.ID] = st
}

// evaluateThresholds issues an early invoice when a billing threshold is
// crossed, and tells the customer why.
func (c *cycle) evaluateThresholds(ctx workflow.Context, now time.Time, billUsage map[string]decimal.Decimal) {
	d := billing.EvaluateThresholds(billing.ThresholdCheck{
		Thresholds: c.st.Thresholds, Current: c.st.Billed, LastIssued: c.st.LastIssued,
		Usage: billUsage, IssuedUsage: c.st.IssuedUsage,
	})
	if !d.Issue {
		return
	}
	n := c.st.EarlyInvoices + 1
	id := c.invoiceID("threshold-" + strconv.Itoa(n))
	in := activities.IssueInvoiceInput{InvoiceID: id, CustomerID: c.in.CustomerID, Kind: activities.InvoiceKindThreshold,
		Invoice: d.Invoice, UsageTo: now}
	var issued activities.IssuedInvoice
	if err := workflow.ExecuteActivity(invoiceOptions(ctx), invAct.IssueInvoice, in).Get(ctx, &issued); err != nil {
		c.fail(ctx, "issue invoice "+id, err)
		return
	}
	c.st.LastIssued, c.st.IssuedUsage, c.st.EarlyInvoices = c.st.Billed, billUsage, n
	c.trackDue(ctx, issued)
	cr := d.Crossed[0]
	what := fmt.Sprintf("billing threshold %s of %s", cr.Kind, cr.Limit)
	if cr.Meter != "" {
		what = fmt.Sprintf("usage threshold of %s %s", cr.Limit, cr.Meter)
	}
	notice := activities.Notice{DedupeKey: id + "/notice", CustomerID: c.in.CustomerID, Kind: "threshold_invoice",
		Subject: "Early invoice for your usage",
		Text: fmt.Sprintf("Your usage reached the %s, so we issued invoice %s for %d %s billed so far this period.",
			what, id, d.Invoice.Total, c.st.Plan.Currency),
		Data: map[string]any{"invoice_id": id, "total": d.Invoice.Total, "currency": string(c.st.Plan.Currency), "kind": cr.Kind}}
	if err := workflow.ExecuteActivity(ctx, ntcAct.SendNotice, notice).Get(ctx, nil); err != nil {
		c.fail(ctx, "notice for "+id, err)
	}
	if c.st.Thresholds.ResetBillingCycleAnchor {
		c.restart = true
	}
}

// pace sets the next check and stores the watch levels: the period total per
// meter at which an alert, a usage threshold or the monetary threshold would
// be reached, and, when usage did not move, a level just above every total.
func (c *cycle) pace(ctx workflow.Context, now time.Time, moved bool, live []billing.Alert,
	usage, billUsage map[string]decimal.Decimal, thresholds bool, prevAmount int64) {
	p := c.st.Period
	levels := map[string]decimal.Decimal{}
	lower := func(m string, v decimal.Decimal) {
		if old, ok := levels[m]; !ok || v.LessThan(old) {
			levels[m] = v
		}
	}
	var targets []watchTarget
	for _, al := range live {
		st := c.st.AlertStates[al.ID]
		if al.Window == 0 && st.Fired > 0 {
			continue
		}
		v := c.st.AlertValues[al.ID]
		if billing.AlertUsesBaseline(al) {
			level := st.Baseline.Add(al.Threshold)
			lower(al.Meter, level)
			targets = append(targets, watchTarget{value: usage[al.Meter], prev: c.st.PrevUsage[al.Meter], level: level})
			continue
		}
		targets = append(targets, watchTarget{value: v, prev: v, level: al.Threshold, below: al.Direction == billing.Below})
	}
	if thresholds {
		// Levels are period totals; billable usage can start later (trial).
		offset := func(m string) decimal.Decimal { return usage[m].Sub(billUsage[m]) }
		for _, m := range sortedKeys(c.st.Thresholds.UsageGTE) {
			level := c.st.IssuedUsage[m].Add(c.st.Thresholds.UsageGTE[m]).Add(offset(m))
			lower(m, level)
			targets = append(targets, watchTarget{value: usage[m], prev: c.st.PrevUsage[m], level: level})
		}
		if lim := c.st.Thresholds.AmountGTE; lim > 0 {
			amount := billing.ThresholdAmount(billing.Increment(c.st.Billed, c.st.LastIssued))
			targets = append(targets, watchTarget{value: decimal.NewFromInt(amount), prev: decimal.NewFromInt(prevAmount), level: decimal.NewFromInt(lim)})
			for _, m := range pricedMeters(c.st.Plan) {
				if level, ok := billing.AmountLevel(c.st.Plan, c.ratedSub(), p, billUsage, c.st.LastIssued, m, lim); ok {
					lower(m, level.Add(offset(m)))
				}
			}
		}
	}
	horizon := nextInterval(c.st.Interval, moved, false)
	elapsed := now.Sub(c.st.PrevCheck)
	if c.st.PrevCheck.IsZero() {
		elapsed = 0
	}
	near := false
	for _, t := range targets {
		if approaching(t, elapsed, horizon) {
			near = true
			break
		}
	}
	c.st.Interval = nextInterval(c.st.Interval, moved, near)
	c.st.NextCheck = now.Add(c.st.Interval)
	if !needsStore(c.st.Watch, levels) {
		return
	}
	in := SetWatchLevelsInput{CustomerID: c.in.CustomerID, From: p.Start, Levels: levels}
	if err := workflow.ExecuteActivity(ctx, useAct.SetWatchLevels, in).Get(ctx, nil); err != nil {
		c.fail(ctx, "set watch levels", err)
		return
	}
	c.st.Watch = levels
}

// needsStore reports whether levels has a level that stored lacks or holds
// higher: only then could ingestion miss a crossing. Raised or dropped levels
// at worst cause one early nudge, which stores the new levels.
func needsStore(stored, levels map[string]decimal.Decimal) bool {
	for _, m := range sortedKeys(levels) {
		if old, ok := stored[m]; !ok || levels[m].LessThan(old) {
			return true
		}
	}
	return false
}

// sameLevels reports whether two per-meter maps hold equal values (a missing
// meter counts as zero).
func sameLevels(a, b map[string]decimal.Decimal) bool {
	for _, m := range sortedKeys(a) {
		if !a[m].Equal(b[m]) {
			return false
		}
	}
	for _, m := range sortedKeys(b) {
		if !a[m].Equal(b[m]) {
			return false
		}
	}
	return true
}

// pricedMeters lists the meters plan prices, in plan order, once each.
func pricedMeters(plan billing.Plan) []string {
	var out []string
	seen := map[string]bool{}
	for _, prod := range plan.Products {
		for _, mp := range prod.Prices {
			if !seen[mp.Meter] {
				seen[mp.Meter] = true
				out = append(out, mp.Meter)
			}
		}
	}
	return out
}
