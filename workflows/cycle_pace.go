package workflows

import (
	"time"

	"github.com/shopspring/decimal"
)

// Pacing of the BillingCycle's usage checks.
const (
	// MinCheckInterval is the check interval while usage is near a threshold
	// or an alert, or growing fast towards one.
	MinCheckInterval = time.Minute
	// MaxCheckInterval is the ceiling the interval doubles up to while usage
	// moves but is far from every threshold and alert.
	MaxCheckInterval = time.Hour
	// IdleCheckInterval is the ceiling the interval keeps doubling up to
	// while usage does not move. Crossings still act at once: ingestion
	// nudges the workflow when a total reaches a watch level.
	IdleCheckInterval = 24 * time.Hour
	// AlertRefresh is how often the all-customers alerts are reloaded;
	// ActiveAlertRefresh applies while usage moves.
	AlertRefresh       = 24 * time.Hour
	ActiveAlertRefresh = 6 * time.Hour
	// HistoryBudget is the history length at which a run continues as new,
	// keeping every run under 4,096 events.
	HistoryBudget = 3000
)

// nearFraction is how close (as a fraction of the level) counts as near.
var nearFraction = decimal.RequireFromString("0.1")

// watchTarget is a level one meter's total is watched against.
type watchTarget struct {
	value, prev decimal.Decimal
	level       decimal.Decimal
	// below: the alert fires when the value falls under level.
	below bool
}

// approaching reports whether t's value is within nearFraction of its level,
// or, growing at the pace seen over elapsed, would reach it within horizon.
func approaching(t watchTarget, elapsed, horizon time.Duration) bool {
	margin := t.level.Abs().Mul(nearFraction)
	if t.below {
		return t.value.LessThanOrEqual(t.level.Add(margin))
	}
	if t.value.GreaterThanOrEqual(t.level.Sub(margin)) {
		return true
	}
	growth := t.value.Sub(t.prev)
	if elapsed <= 0 || !growth.IsPositive() {
		return false
	}
	projected := t.value.Add(growth.Mul(decimal.NewFromInt(int64(horizon))).Div(decimal.NewFromInt(int64(elapsed))))
	return projected.GreaterThanOrEqual(t.level)
}

// nextInterval returns the check interval after a check that saw usage move
// (or not) and found it near (or not) a threshold or alert: the minimum when
// usage moves near one; otherwise the previous interval doubled, up to
// MaxCheckInterval while usage moves and IdleCheckInterval while it does not.
func nextInterval(prev time.Duration, moved, near bool) time.Duration {
	prev = max(prev, MinCheckInterval)
	switch {
	case near && moved:
		return MinCheckInterval
	case !moved:
		return min(prev*2, IdleCheckInterval)
	case prev > MaxCheckInterval:
		return MinCheckInterval * 2 // usage resumed after an idle spell
	}
	return min(prev*2, MaxCheckInterval)
}
