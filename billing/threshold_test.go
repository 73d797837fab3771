package billing

import (
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// thresholdPlan charges a 10.00 flat fee and 0.10 per request.
func thresholdPlan() Plan {
	return Plan{ID: "api", Name: "API", Currency: "usd", Interval: Interval{Month, 1}, Products: []Product{
		{ID: "base", Name: "Base", FlatFee: 1000},
		{ID: "calls", Name: "Calls", Prices: []MeterPrice{{Meter: "requests", Model: PerUnit, UnitPrice: dec("10")}}},
	}}
}

func TestThresholdsSuppressed(t *testing.T) {
	p := Period{Start: utc(2026, 11, 1, 0, 0), End: utc(2026, 12, 1, 0, 0)}
	trialEnd := utc(2026, 11, 8, 0, 0)
	trial := Subscription{TrialEnd: &trialEnd}
	tests := []struct {
		name string
		sub  Subscription
		now  time.Time
		want string
	}{
		{"mid period", Subscription{}, utc(2026, 11, 15, 0, 0), ""},
		{"in trial", trial, utc(2026, 11, 7, 23, 59), SuppressedTrial},
		{"trial over", trial, trialEnd, ""},
		{"just before the last 24 h", Subscription{}, utc(2026, 11, 29, 23, 59), ""},
		{"last 24 h begin", Subscription{}, utc(2026, 11, 30, 0, 0), SuppressedPeriodEnd},
		{"last minute", Subscription{}, utc(2026, 11, 30, 23, 59), SuppressedPeriodEnd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ThresholdsSuppressed(tt.sub, p, tt.now); got != tt.want {
				t.Errorf("ThresholdsSuppressed(%v) = %q, want %q", tt.now, got, tt.want)
			}
		})
	}
}

func TestThresholdAmount(t *testing.T) {
	inv := Invoice{Subtotal: 10000, Discount: 1000, Tax: 900, CreditApplied: 500, Total: 9400}
	if got := ThresholdAmount(inv); got != 8500 {
		t.Errorf("ThresholdAmount(%+v) = %d, want 8500 (subtotal - discount - credit, no tax)", inv, got)
	}
	if got := ThresholdAmount(Invoice{Subtotal: 100, CreditApplied: 300}); got != 0 {
		t.Errorf("ThresholdAmount(credit above subtotal) = %d, want 0", got)
	}
}

func TestEvaluateThresholds(t *testing.T) {
	plan := thresholdPlan()
	p := Period{Start: utc(2026, 11, 1, 0, 0), End: utc(2026, 12, 1, 0, 0)}
	sub := Subscription{CustomerID: "c1", PlanID: plan.ID, Currency: "usd", Status: Active}
	rate := func(u map[string]decimal.Decimal) Invoice { return Rate(plan, sub, p, u) }
	// 1000 flat + 10 per request: 500 requests = 6000.
	tests := []struct {
		name       string
		th         Thresholds
		usage      map[string]decimal.Decimal
		issuedAt   map[string]decimal.Decimal // usage at the last early invoice; nil = none
		wantKinds  []string
		wantIssue  bool
		wantAmount int64
	}{
		{"below the amount", Thresholds{AmountGTE: 6000}, usage("requests", "499"), nil, nil, false, 5990},
		{"amount reached", Thresholds{AmountGTE: 6000}, usage("requests", "500"), nil, []string{CrossedAmount}, true, 6000},
		{"amount since the last early invoice", Thresholds{AmountGTE: 6000}, usage("requests", "900"), usage("requests", "500"), nil, false, 4000},
		{"amount reached again", Thresholds{AmountGTE: 6000}, usage("requests", "1100"), usage("requests", "500"), []string{CrossedAmount}, true, 6000},
		{"usage reached", Thresholds{UsageGTE: usage("requests", "100")}, usage("requests", "100"), nil, []string{CrossedUsage}, true, 2000},
		{"usage since the last early invoice", Thresholds{UsageGTE: usage("requests", "100")}, usage("requests", "199"), usage("requests", "100"), nil, false, 990},
		{"both", Thresholds{AmountGTE: 2000, UsageGTE: usage("requests", "100")}, usage("requests", "100"), nil, []string{CrossedAmount, CrossedUsage}, true, 2000},
		{"no thresholds", Thresholds{}, usage("requests", "100000"), nil, nil, false, 1001000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var last Invoice
			if tt.issuedAt != nil {
				last = rate(tt.issuedAt)
			}
			d := EvaluateThresholds(ThresholdCheck{Thresholds: tt.th, Current: rate(tt.usage), LastIssued: last, Usage: tt.usage, IssuedUsage: tt.issuedAt})
			var kinds []string
			for _, c := range d.Crossed {
				kinds = append(kinds, c.Kind)
			}
			if len(kinds) != len(tt.wantKinds) || (len(kinds) > 0 && kinds[0] != tt.wantKinds[0]) {
				t.Errorf("EvaluateThresholds().Crossed = %v, want %v", kinds, tt.wantKinds)
			}
			if d.Issue != tt.wantIssue || d.Invoice.Total != tt.wantAmount {
				t.Errorf("EvaluateThresholds() issue %v total %d, want %v and %d", d.Issue, d.Invoice.Total, tt.wantIssue, tt.wantAmount)
			}
		})
	}
}

func TestEvaluateThresholdsNothingToIssue(t *testing.T) {
	// A 100% discount: the usage threshold is reached but nothing is owed.
	plan := thresholdPlan()
	p := Period{Start: utc(2026, 11, 1, 0, 0), End: utc(2026, 12, 1, 0, 0)}
	sub := Subscription{CustomerID: "c1", PlanID: plan.ID, Currency: "usd", Status: Active,
		Discounts: []Discount{{Kind: PercentOff, PercentOff: dec("100")}}}
	u := usage("requests", "100")
	d := EvaluateThresholds(ThresholdCheck{Thresholds: Thresholds{UsageGTE: usage("requests", "50")}, Current: Rate(plan, sub, p, u), Usage: u})
	if len(d.Crossed) != 1 || d.Issue {
		t.Errorf("EvaluateThresholds(free) = crossed %v issue %v, want crossed usage and no invoice", d.Crossed, d.Issue)
	}
}

func TestValidateThresholds(t *testing.T) {
	plan := thresholdPlan()
	tests := []struct {
		name  string
		th    Thresholds
		field string
	}{
		{"none", Thresholds{}, ""},
		{"above the flat fees", Thresholds{AmountGTE: 1001}, ""},
		{"equal to the flat fees", Thresholds{AmountGTE: 1000}, "amount_gte"},
		{"negative", Thresholds{AmountGTE: -5}, "amount_gte"},
		{"usage on a priced meter", Thresholds{UsageGTE: usage("requests", "10")}, ""},
		{"usage zero", Thresholds{UsageGTE: usage("requests", "0")}, "usage_gte.requests"},
		{"usage on an unpriced meter", Thresholds{UsageGTE: usage("storage", "10")}, "usage_gte.storage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateThresholds(tt.th, plan)
			var fe *FieldError
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("ValidateThresholds(%+v) = %v, want nil", tt.th, err)
			case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
				t.Errorf("ValidateThresholds(%+v) = %v, want a field error on %s", tt.th, err, tt.field)
			}
		})
	}
}

func TestAmountLevel(t *testing.T) {
	plan := thresholdPlan()
	p := Period{Start: utc(2026, 11, 1, 0, 0), End: utc(2026, 12, 1, 0, 0)}
	sub := Subscription{CustomerID: "c1", PlanID: plan.ID, Currency: "usd", Status: Active}
	tests := []struct {
		name   string
		usage  map[string]decimal.Decimal
		last   map[string]decimal.Decimal
		meter  string
		limit  int64
		want   string
		wantOK bool
	}{
		{"from zero", nil, nil, "requests", 6000, "500", true},
		{"from some usage", usage("requests", "123"), nil, "requests", 6000, "500", true},
		{"not a whole number of units", nil, nil, "requests", 6005, "501", true},
		{"already reached", usage("requests", "800"), nil, "requests", 6000, "800", true},
		{"after an early invoice", usage("requests", "600"), usage("requests", "500"), "requests", 6000, "1100", true},
		{"unpriced meter", nil, nil, "storage", 6000, "0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var last Invoice
			if tt.last != nil {
				last = Rate(plan, sub, p, tt.last)
			}
			got, ok := AmountLevel(plan, sub, p, tt.usage, last, tt.meter, tt.limit)
			if ok != tt.wantOK || (ok && !got.Equal(dec(tt.want))) {
				t.Errorf("AmountLevel(%s, %d) = %v, %v, want %s, %v", tt.meter, tt.limit, got, ok, tt.want, tt.wantOK)
			}
			if ok {
				u := map[string]decimal.Decimal{tt.meter: got}
				if amt := ThresholdAmount(Increment(Rate(plan, sub, p, u), last)); amt < tt.limit {
					t.Errorf("at level %v the amount is %d, below %d", got, amt, tt.limit)
				}
			}
		})
	}
}
