package billing

import (
	"slices"
	"time"

	"github.com/shopspring/decimal"
)

// ThresholdQuietPeriod is the time before a period's end during which billing
// thresholds are not evaluated: the cycle invoice follows soon anyway.
const ThresholdQuietPeriod = 24 * time.Hour

// Why thresholds are not evaluated (see [ThresholdsSuppressed]).
const (
	SuppressedTrial     = "trial"
	SuppressedPeriodEnd = "period_end"
)

// Kinds of threshold crossing.
const (
	CrossedAmount = "amount_gte"
	CrossedUsage  = "usage_gte"
)

// ThresholdsSuppressed says why billing thresholds are not evaluated at now
// in period p: SuppressedTrial during the subscription's trial,
// SuppressedPeriodEnd in the last ThresholdQuietPeriod before p ends, or ""
// when they are evaluated.
func ThresholdsSuppressed(sub Subscription, p Period, now time.Time) string {
	switch {
	case sub.InTrial(now):
		return SuppressedTrial
	case !now.Before(p.End.Add(-ThresholdQuietPeriod)):
		return SuppressedPeriodEnd
	}
	return ""
}

// ThresholdAmount is the amount a monetary threshold compares: the invoice's
// subtotal less discounts and credits applied, excluding tax, never negative.
func ThresholdAmount(inv Invoice) int64 {
	return max(0, inv.Subtotal-inv.Discount-inv.CreditApplied)
}

// ThresholdCheck is what [EvaluateThresholds] looks at.
type ThresholdCheck struct {
	Thresholds Thresholds
	// Current is Rate over the cycle's cumulative usage so far.
	Current Invoice
	// LastIssued is the cumulative invoice behind the last early invoice of
	// the cycle (the zero Invoice when none was issued).
	LastIssued Invoice
	// Usage is the cycle's cumulative usage per meter; IssuedUsage the usage
	// at the last early invoice.
	Usage, IssuedUsage map[string]decimal.Decimal
}

// ThresholdCrossing is one threshold that was reached.
type ThresholdCrossing struct {
	// Kind is CrossedAmount or CrossedUsage.
	Kind string `json:"kind"`
	// Meter is the usage threshold's meter (CrossedUsage).
	Meter string `json:"meter,omitempty"`
	// Value is the amount (minor units) or the quantity not yet invoiced;
	// Limit is the threshold.
	Value decimal.Decimal `json:"value"`
	Limit decimal.Decimal `json:"limit"`
}

// ThresholdDecision is the outcome of [EvaluateThresholds].
type ThresholdDecision struct {
	// Crossed lists the thresholds reached: the monetary one first, then
	// usage thresholds by meter.
	Crossed []ThresholdCrossing `json:"crossed,omitempty"`
	// Invoice is Increment(Current, LastIssued): the early invoice to issue
	// when Issue is true.
	Invoice Invoice `json:"invoice"`
	// Issue is true when a threshold is reached and the increment's total is
	// positive; otherwise nothing is issued and the difference is settled
	// later (see [Increment]).
	Issue bool `json:"issue"`
}

// EvaluateThresholds compares what is billed so far this cycle and not yet
// invoiced with the thresholds. The monetary threshold compares
// ThresholdAmount of the increment since the last early invoice; a usage
// threshold compares the meter's usage since the last early invoice. Because
// checks run at intervals, an early invoice can slightly exceed the threshold.
// Callers skip the evaluation when [ThresholdsSuppressed] says so.
func EvaluateThresholds(c ThresholdCheck) ThresholdDecision {
	d := ThresholdDecision{Invoice: Increment(c.Current, c.LastIssued)}
	if lim := c.Thresholds.AmountGTE; lim > 0 {
		if amt := ThresholdAmount(d.Invoice); amt >= lim {
			d.Crossed = append(d.Crossed, ThresholdCrossing{Kind: CrossedAmount,
				Value: decimal.NewFromInt(amt), Limit: decimal.NewFromInt(lim)})
		}
	}
	for _, m := range sortedKeys(c.Thresholds.UsageGTE) {
		lim := c.Thresholds.UsageGTE[m]
		if !lim.IsPositive() {
			continue
		}
		if q := c.Usage[m].Sub(c.IssuedUsage[m]); q.GreaterThanOrEqual(lim) {
			d.Crossed = append(d.Crossed, ThresholdCrossing{Kind: CrossedUsage, Meter: m, Value: q, Limit: lim})
		}
	}
	d.Issue = len(d.Crossed) > 0 && d.Invoice.Total > 0
	return d
}

// ValidateThresholds returns a *FieldError naming the first invalid field of
// t for a subscription to plan, or nil: the monetary threshold must exceed the
// sum of the plan's flat fees, and each usage threshold must be positive and
// on a meter the plan prices.
func ValidateThresholds(t Thresholds, plan Plan) error {
	if fe := validateThresholds(t, plan); fe != nil {
		return fe
	}
	return nil
}

func validateThresholds(t Thresholds, plan Plan) *FieldError {
	var fees int64
	priced := map[string]bool{}
	for _, p := range plan.Products {
		fees += p.FlatFee
		for _, mp := range p.Prices {
			priced[mp.Meter] = true
		}
	}
	if t.AmountGTE < 0 {
		return fieldErr("amount_gte", "must not be negative")
	}
	if t.AmountGTE > 0 && t.AmountGTE <= fees {
		return fieldErr("amount_gte", "must exceed the plan's flat fees (%d)", fees)
	}
	for _, m := range sortedKeys(t.UsageGTE) {
		switch {
		case !t.UsageGTE[m].IsPositive():
			return fieldErr("usage_gte."+m, "must be positive")
		case !priced[m]:
			return fieldErr("usage_gte."+m, "plan %q does not price meter %q", plan.ID, m)
		}
	}
	return nil
}

// AmountLevel returns the smallest whole quantity of meter, at or above its
// current usage, at which the monetary threshold limit would be reached with
// every other meter unchanged: ThresholdAmount(Increment(Rate(plan, sub, p,
// usage with meter at that quantity), lastIssued)) >= limit. ok is false when
// no quantity up to 10^15 above the current one reaches it (for example a
// meter the plan does not price). Rating must grow with the quantity (true
// for per-unit, graduated and package prices); for volume prices the level is
// an estimate.
func AmountLevel(plan Plan, sub Subscription, p Period, usage map[string]decimal.Decimal, lastIssued Invoice, meter string, limit int64) (level decimal.Decimal, ok bool) {
	q := make(map[string]decimal.Decimal, len(usage)+1)
	for _, m := range sortedKeys(usage) {
		q[m] = usage[m]
	}
	reaches := func(v decimal.Decimal) bool {
		q[meter] = v
		return ThresholdAmount(Increment(Rate(plan, sub, p, q), lastIssued)) >= limit
	}
	lo := decimal.Max(usage[meter], decimal.Zero)
	if reaches(lo) {
		return lo, true
	}
	step := decimal.NewFromInt(1)
	ceiling := decimal.New(1, 15)
	hi := lo.Add(step)
	for !reaches(hi) {
		if step.GreaterThan(ceiling) {
			return decimal.Zero, false
		}
		lo = hi
		step = step.Add(step)
		hi = lo.Add(step)
	}
	// Invariant: reaches(hi), !reaches(lo).
	one := decimal.NewFromInt(1)
	for hi.Sub(lo).GreaterThan(one) {
		mid := lo.Add(hi.Sub(lo).Div(decimal.NewFromInt(2)).Floor())
		if reaches(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi.Ceil(), true
}

// sortedKeys returns m's keys in ascending order, so callers iterate maps
// deterministically (workflows call this package).
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	//workflowcheck:ignore keys are sorted before use
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
