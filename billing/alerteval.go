package billing

import (
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// AlertState is what a billing cycle remembers about one alert.
type AlertState struct {
	// Baseline is the alert's meter total, this cycle, at the moment the
	// alert was created (zero when it was created before the cycle began).
	// Only usage above it counts toward the alert.
	Baseline decimal.Decimal `json:"baseline"`
	// BaselineKnown is false until the baseline has been read.
	BaselineKnown bool `json:"baseline_known"`
	// Fired is how many times the alert fired this cycle.
	Fired int `json:"fired"`
	// LastFired is when the alert last fired, in this cycle or an earlier one.
	LastFired time.Time `json:"last_fired,omitzero"`
}

// AlertFiring is an alert that fires now.
type AlertFiring struct {
	Alert Alert `json:"alert"`
	// Value is what the alert compared with its threshold.
	Value decimal.Decimal `json:"value"`
	// Seq is the 1-based count of this firing within the cycle.
	Seq int `json:"seq"`
}

// FilterMatches reports whether metadata satisfies every key of filter: a
// value must be equal, a value "!v" must not be v (a missing key satisfies it).
func FilterMatches(filter, metadata map[string]string) bool {
	//workflowcheck:ignore the result does not depend on the order
	for k, want := range filter {
		got, ok := metadata[k]
		if not, neg := strings.CutPrefix(want, "!"); neg {
			if ok && got == not {
				return false
			}
			continue
		}
		if !ok || got != want {
			return false
		}
	}
	return true
}

// AlertApplies reports whether alert a watches the customer customerID whose
// metadata is metadata: it is live, and either the customer's own or an
// all-customers alert whose filter matches.
func AlertApplies(a Alert, customerID string, metadata map[string]string) bool {
	if a.Archived {
		return false
	}
	if a.CustomerID != "" {
		return a.CustomerID == customerID
	}
	return FilterMatches(a.CustomerFilter, metadata)
}

// AlertCooldown is how long a rolling alert waits before firing again.
func AlertCooldown(a Alert) time.Duration {
	if a.Cooldown > 0 {
		return time.Duration(a.Cooldown)
	}
	return DefaultAlertCooldown
}

// AlertUsesBaseline reports whether alert a compares the cycle total minus
// its baseline: true for cycle (non-rolling) "above" alerts. Rolling alerts
// and "below" alerts instead read only the span after their creation (see
// [AlertSpan]).
func AlertUsesBaseline(a Alert) bool {
	return a.Window == 0 && a.Direction != Below
}

// AlertSpan returns the event-time range [from, to) whose meter total alert a
// looks at, at now in period p. Cycle alerts look at the period (from the
// alert's creation for "below" alerts); rolling alerts look at the last
// Window, never before the alert's creation.
func AlertSpan(a Alert, p Period, now time.Time) (from, to time.Time) {
	if a.Window > 0 {
		from = now.Add(-time.Duration(a.Window))
		if a.CreatedAt.After(from) {
			from = a.CreatedAt
		}
		return from, now
	}
	from = p.Start
	if !AlertUsesBaseline(a) && a.CreatedAt.After(from) {
		from = a.CreatedAt
	}
	return from, p.End
}

// AlertValue returns the value alert a compares with its threshold, given the
// meter total over [AlertSpan] and the alert's state.
func AlertValue(a Alert, spanTotal decimal.Decimal, st AlertState) decimal.Decimal {
	if AlertUsesBaseline(a) {
		return spanTotal.Sub(st.Baseline)
	}
	return spanTotal
}

// AlertCrossed reports whether v is on the firing side of a's threshold: at
// or above it for "above" alerts, strictly below it for "below" alerts.
func AlertCrossed(a Alert, v decimal.Decimal) bool {
	if a.Direction == Below {
		return v.LessThan(a.Threshold)
	}
	return v.GreaterThanOrEqual(a.Threshold)
}

// AlertDue reports whether alert a, whose value is v, fires at now: its
// threshold is crossed and it has not fired this cycle, or it is a rolling
// alert whose cool-down since it last fired has passed.
func AlertDue(a Alert, v decimal.Decimal, st AlertState, now time.Time) bool {
	if a.Archived || !AlertCrossed(a, v) {
		return false
	}
	if st.Fired == 0 && (a.Window == 0 || st.LastFired.IsZero()) {
		return true
	}
	if a.Window == 0 {
		return false
	}
	return !now.Before(st.LastFired.Add(AlertCooldown(a)))
}

// EvaluateAlerts returns the alerts that fire at now, in the order of alerts.
// values holds each alert's value by alert id (see [AlertValue]); alerts
// without a value are skipped. It does not change states: the caller records
// each firing (Fired = Seq, LastFired = now) once its actions are done.
func EvaluateAlerts(alerts []Alert, states map[string]AlertState, values map[string]decimal.Decimal, now time.Time) []AlertFiring {
	var out []AlertFiring
	for _, a := range alerts {
		v, ok := values[a.ID]
		if !ok {
			continue
		}
		st := states[a.ID]
		if AlertDue(a, v, st, now) {
			out = append(out, AlertFiring{Alert: a, Value: v, Seq: st.Fired + 1})
		}
	}
	return out
}

// ValidateAlert returns a *FieldError naming the first invalid field of a, or
// nil. An empty Direction means Above.
func ValidateAlert(a Alert) error {
	if fe := validateAlert(a); fe != nil {
		return fe
	}
	return nil
}

func validateAlert(a Alert) *FieldError {
	switch {
	case a.ID == "":
		return fieldErr("id", "is required")
	case a.Meter == "":
		return fieldErr("meter", "is required")
	case a.Threshold.IsNegative():
		return fieldErr("threshold", "must not be negative")
	case a.Direction != "" && a.Direction != Above && a.Direction != Below:
		return fieldErr("direction", "must be \"above\" or \"below\"")
	case a.Window < 0:
		return fieldErr("window", "must not be negative")
	case a.Cooldown < 0:
		return fieldErr("cooldown", "must not be negative")
	case len(a.Actions) == 0:
		return fieldErr("actions", "must name at least one action")
	}
	for i, act := range a.Actions {
		switch act {
		case ActionEmail, ActionRevokeAccess, ActionNotifySales:
		default:
			return fieldErr(indexed("actions", i), "unknown action %q", string(act))
		}
	}
	return nil
}
