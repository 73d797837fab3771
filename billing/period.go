package billing

import (
	"time"

	"github.com/shopspring/decimal"
)

// Status is the state of a subscription.
type Status string

// The states a subscription can be in.
const (
	Trialing  Status = "trialing"
	Active    Status = "active"
	PastDue   Status = "past_due"
	Suspended Status = "suspended"
	Canceled  Status = "canceled"
)

// DiscountKind says how a discount reduces an invoice.
type DiscountKind string

// The kinds of discount.
const (
	// PercentOff takes PercentOff percent off the amount still due.
	PercentOff DiscountKind = "percent"
	// AmountOff takes AmountOff minor units off, never more than is due.
	AmountOff DiscountKind = "amount_off"
)

// Discount reduces a subscription's invoices until End.
type Discount struct {
	Kind DiscountKind `json:"kind"`
	// PercentOff is a percentage between 0 and 100 (percent kind).
	PercentOff decimal.Decimal `json:"percent_off,omitzero"`
	// AmountOff is in minor units of the subscription's currency
	// (amount_off kind), applied once per invoice.
	AmountOff int64 `json:"amount_off,omitempty"`
	// End is when the discount stops; nil means forever. A discount applies
	// to a whole period when it is still in force at the period's start.
	End *time.Time `json:"end,omitempty"`
}

// activeAt reports whether d applies to a period starting at start.
func (d Discount) activeAt(start time.Time) bool {
	return d.End == nil || d.End.After(start)
}

// Subscription is a customer's subscription to a plan and the per-customer
// terms that rating needs.
type Subscription struct {
	CustomerID string `json:"customer_id"`
	PlanID     string `json:"plan_id"`
	// Anchor is the start of the first billing period; every period starts
	// on the anchor's day of month (or day count) and time of day, in UTC.
	Anchor   time.Time  `json:"anchor"`
	TrialEnd *time.Time `json:"trial_end,omitempty"`
	Status   Status     `json:"status"`
	// Discounts apply in order to each invoice's subtotal.
	Discounts []Discount `json:"discounts,omitempty"`
	// CreditBalance is prepaid credit in minor units, applied after tax.
	CreditBalance int64 `json:"credit_balance"`
	// TaxRate is a percentage (8.25 means 8.25 %); zero means no tax.
	TaxRate  decimal.Decimal `json:"tax_rate"`
	Currency Currency        `json:"currency"`
}

// InTrial reports whether t is before the end of the subscription's trial.
// Rate does not look at trials: callers skip billing for trial periods.
func (s Subscription) InTrial(t time.Time) bool {
	return s.TrialEnd != nil && t.Before(*s.TrialEnd)
}

// Validate returns a *FieldError naming the first invalid field, or nil.
func (s Subscription) Validate() error {
	if fe := s.validate(); fe != nil {
		return fe
	}
	return nil
}

func (s Subscription) validate() *FieldError {
	hundred := decimal.NewFromInt(100)
	switch {
	case s.CustomerID == "":
		return fieldErr("customer_id", "is required")
	case s.PlanID == "":
		return fieldErr("plan_id", "is required")
	case s.Anchor.IsZero():
		return fieldErr("anchor", "is required")
	case !s.Currency.Known():
		return fieldErr("currency", "unsupported currency %q", string(s.Currency))
	case s.CreditBalance < 0:
		return fieldErr("credit_balance", "must not be negative")
	case s.TaxRate.IsNegative() || s.TaxRate.GreaterThan(hundred):
		return fieldErr("tax_rate", "must be a percentage between 0 and 100")
	}
	switch s.Status {
	case Trialing, Active, PastDue, Suspended, Canceled:
	default:
		return fieldErr("status", "unknown status %q", s.Status)
	}
	for i, d := range s.Discounts {
		path := indexed("discounts", i)
		switch d.Kind {
		case PercentOff:
			if d.PercentOff.IsNegative() || d.PercentOff.GreaterThan(hundred) {
				return fieldErr(path+".percent_off", "must be a percentage between 0 and 100")
			}
		case AmountOff:
			if d.AmountOff < 0 {
				return fieldErr(path+".amount_off", "must not be negative")
			}
		default:
			return fieldErr(path+".kind", "must be \"percent\" or \"amount_off\"")
		}
	}
	return nil
}

// Period is a billing period: from Start (inclusive) to End (exclusive).
type Period struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Contains reports whether t falls within p.
func (p Period) Contains(t time.Time) bool {
	return !t.Before(p.Start) && t.Before(p.End)
}

// PeriodAt returns the billing period that contains t for a subscription
// anchored at anchor and billed every iv. All times are in UTC.
//
// Day intervals start at anchor + k×Count days. Month intervals start on the
// anchor's day of month, k×Count months after the anchor, at the anchor's
// time of day; when that day does not exist in a month the period starts on
// the month's last day, and returns to the anchor's day in longer months: an
// anchor of January 31 gives periods starting Feb 28 (Feb 29 in leap years),
// Mar 31, Apr 30, May 31. Periods extend backwards for t before the anchor.
// iv must be valid (see Interval.Validate); an invalid interval is treated as
// one month.
func PeriodAt(anchor time.Time, iv Interval, t time.Time) Period {
	anchor, t = anchor.UTC(), t.UTC()
	n := iv.Count
	if n < 1 {
		n = 1
	}
	if iv.Unit == Day {
		step := time.Duration(n) * 24 * time.Hour
		k := int64(t.Sub(anchor) / step)
		if t.Before(anchor.Add(time.Duration(k) * step)) {
			k--
		}
		start := anchor.AddDate(0, 0, int(k)*n)
		return Period{Start: start, End: start.AddDate(0, 0, n)}
	}
	months := (t.Year()-anchor.Year())*12 + int(t.Month()) - int(anchor.Month())
	k := floorDiv(months, n)
	for t.Before(monthStep(anchor, k*n)) {
		k--
	}
	for !t.Before(monthStep(anchor, (k+1)*n)) {
		k++
	}
	return Period{Start: monthStep(anchor, k*n), End: monthStep(anchor, (k+1)*n)}
}

// monthStep returns anchor moved by m months, clamping the day to the end of
// shorter months.
func monthStep(anchor time.Time, m int) time.Time {
	y, mon, d := anchor.Date()
	first := time.Date(y, mon+time.Month(m), 1, 0, 0, 0, 0, time.UTC)
	if last := daysIn(first.Year(), first.Month()); d > last {
		d = last
	}
	h, mi, s := anchor.Clock()
	return time.Date(first.Year(), first.Month(), d, h, mi, s, anchor.Nanosecond(), time.UTC)
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
