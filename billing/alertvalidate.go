package billing

import (
	"strconv"
	"time"
)

// MaxAlertWindow bounds an alert's rolling window.
const MaxAlertWindow = 31 * 24 * time.Hour

// maxAlertSlugLength matches the longest meter slug.
const maxAlertSlugLength = 64

// Validate reports the first invalid field of a as a *FieldError, or nil. It
// checks the rule's form only (the meter's existence and the per-meter limit
// need the store): meter is a slug; threshold is positive for "above"
// alerts; direction is "above" or "below"; window is 0 or from 1m to 31 days;
// cooldown is set only on windowed alerts and is not negative; actions are
// known and not repeated; customer_filter is only for all-customers alerts.
func (a Alert) Validate() error {
	if err := checkAlert(a); err != nil {
		return err
	}
	return nil
}

func checkAlert(a Alert) *FieldError {
	if a.Meter == "" || len(a.Meter) > maxAlertSlugLength {
		return fieldErr("meter", "must be a meter slug of 1 to %d characters", maxAlertSlugLength)
	}
	for i := 0; i < len(a.Meter); i++ {
		c := a.Meter[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fieldErr("meter", "may contain only a-z, 0-9, '_' and '-'; found %s", strconv.QuoteRune(rune(c)))
		}
	}
	switch a.Direction {
	case Above:
		if !a.Threshold.IsPositive() {
			return fieldErr("threshold", "must be greater than 0 for an alert on usage above it, got %s", a.Threshold)
		}
	case Below:
	default:
		return fieldErr("direction", "must be %q or %q, got %q", Above, Below, a.Direction)
	}
	w := time.Duration(a.Window)
	switch {
	case w < 0:
		return fieldErr("window", "must not be negative, got %s", w)
	case w > 0 && w < time.Minute:
		return fieldErr("window", "must be at least 1m, got %s", w)
	case w > MaxAlertWindow:
		return fieldErr("window", "must be at most %s (31 days), got %s", MaxAlertWindow, w)
	}
	c := time.Duration(a.Cooldown)
	switch {
	case c < 0:
		return fieldErr("cooldown", "must not be negative, got %s", c)
	case c > 0 && w == 0:
		return fieldErr("cooldown", "applies only to alerts with a window; an alert on the billing cycle fires once per cycle")
	}
	if len(a.Actions) == 0 {
		return fieldErr("actions", "must name at least one of %q, %q, %q", ActionEmail, ActionRevokeAccess, ActionNotifySales)
	}
	seen := map[AlertAction]bool{}
	for i, act := range a.Actions {
		switch act {
		case ActionEmail, ActionRevokeAccess, ActionNotifySales:
		default:
			return fieldErr(indexed("actions", i), "unknown action %q; want %q, %q or %q", act, ActionEmail, ActionRevokeAccess, ActionNotifySales)
		}
		if seen[act] {
			return fieldErr(indexed("actions", i), "action %q is listed twice", act)
		}
		seen[act] = true
	}
	if len(a.CustomerFilter) > 0 && a.CustomerID != "" {
		return fieldErr("customer_filter", "applies only to alerts for all customers; this alert names customer_id")
	}
	for k, v := range a.CustomerFilter {
		if k == "" {
			return fieldErr("customer_filter", "keys must not be empty")
		}
		if v == "" || v == "!" {
			return fieldErr("customer_filter."+k, "must be a value to match, or \"!value\" to exclude")
		}
	}
	return nil
}
