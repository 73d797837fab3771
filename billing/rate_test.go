package billing

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func usage(kv ...string) map[string]decimal.Decimal {
	m := make(map[string]decimal.Decimal, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = dec(kv[i+1])
	}
	return m
}

// fontsPlan bills Stripe's graduated example: 13 fonts cost $85.50.
func fontsPlan() Plan {
	return onePricePlan("usd", MeterPrice{Meter: "fonts", Model: Graduated, Tiers: stripeTiers()})
}

func TestRateLines(t *testing.T) {
	plan := validPlan()
	sub := Subscription{CustomerID: "c1", PlanID: plan.ID, Currency: "usd", Status: Active}
	period := PeriodAt(utc(2024, 1, 31, 0, 0), plan.Interval, utc(2024, 2, 10, 0, 0))
	inv := Rate(plan, sub, period, usage("requests", "1234567", "fonts", "13", "unpriced_meter", "999"))

	want := []struct {
		product, meter string
		amount         int64
	}{
		{"platform", "", 4900},
		{"search", "requests", 48983}, // (1,234,567 - 10,000 free) × 0.04 = 48982.68 cents
		{"search", "storage_gb", 0},   // no usage: listed with a zero amount
		{"search", "fonts", 8550},
	}
	if len(inv.Lines) != len(want) {
		t.Fatalf("Rate() has %d lines, want %d: %+v", len(inv.Lines), len(want), inv.Lines)
	}
	var sum int64
	for i, w := range want {
		l := inv.Lines[i]
		if l.Product != w.product || l.Meter != w.meter || l.Amount != w.amount {
			t.Errorf("Lines[%d] = %s/%s %d, want %s/%s %d", i, l.Product, l.Meter, l.Amount, w.product, w.meter, w.amount)
		}
		sum += w.amount
	}
	if inv.Subtotal != sum || inv.Total != sum {
		t.Errorf("Rate() subtotal %d total %d, want %d and %d", inv.Subtotal, inv.Total, sum, sum)
	}
	if !inv.PeriodStart.Equal(period.Start) || !inv.PeriodEnd.Equal(period.End) || inv.Currency != "usd" || inv.CustomerID != "c1" {
		t.Errorf("Rate() header = %v %v %s %s, want period %v-%v, usd, c1", inv.PeriodStart, inv.PeriodEnd, inv.Currency, inv.CustomerID, period.Start, period.End)
	}
}

func TestRateZeroUsage(t *testing.T) {
	plan := validPlan()
	plan.Products[0].FlatFee = 0
	plan.Products = plan.Products[1:]
	inv := Estimate(plan, nil)
	if len(inv.Lines) != 3 || inv.Total != 0 {
		t.Errorf("Estimate(no usage) = %d lines, total %d; want 3 zero lines, total 0", len(inv.Lines), inv.Total)
	}
	for _, l := range inv.Lines {
		if l.Amount != 0 || !l.Quantity.IsZero() {
			t.Errorf("Estimate(no usage) line %s = %d for %s units, want 0 for 0", l.Meter, l.Amount, l.Quantity)
		}
	}
}

func TestRateAdjustments(t *testing.T) {
	plan := fontsPlan() // 13 fonts: subtotal 8550
	start := utc(2024, 3, 1, 0, 0)
	period := Period{Start: start, End: utc(2024, 4, 1, 0, 0)}
	before, after := start.Add(-time.Second), start.Add(time.Hour)
	tests := []struct {
		name                                         string
		qty                                          string
		sub                                          Subscription
		wantDiscount, wantTax, wantCredit, wantTotal int64
	}{
		{"nothing", "13", Subscription{}, 0, 0, 0, 8550},
		{"10% off", "13", Subscription{Discounts: []Discount{{Kind: PercentOff, PercentOff: dec("10")}}}, 855, 0, 0, 7695},
		{"percent rounded once", "13.01", Subscription{Discounts: []Discount{{Kind: PercentOff, PercentOff: dec("10")}}}, 856, 0, 0, 8556 - 856}, // 13.01 fonts: 8556 cents; 855.6 → 856
		{"amount off", "13", Subscription{Discounts: []Discount{{Kind: AmountOff, AmountOff: 1000}}}, 1000, 0, 0, 7550},
		{"amount off capped at subtotal", "13", Subscription{Discounts: []Discount{{Kind: AmountOff, AmountOff: 10000}}}, 8550, 0, 0, 0},
		{"discounts in order", "13", Subscription{Discounts: []Discount{{Kind: PercentOff, PercentOff: dec("10")}, {Kind: AmountOff, AmountOff: 500}}}, 855 + 500, 0, 0, 8550 - 1355},
		{"percent of the rest", "13", Subscription{Discounts: []Discount{{Kind: AmountOff, AmountOff: 550}, {Kind: PercentOff, PercentOff: dec("50")}}}, 550 + 4000, 0, 0, 4000},
		{"expired discount ignored", "13", Subscription{Discounts: []Discount{{Kind: PercentOff, PercentOff: dec("10"), End: &before}}}, 0, 0, 0, 8550},
		{"discount ending mid-period applies", "13", Subscription{Discounts: []Discount{{Kind: PercentOff, PercentOff: dec("10"), End: &after}}}, 855, 0, 0, 7695},
		{"tax", "13", Subscription{TaxRate: dec("8.25")}, 0, 705, 0, 8550 + 705},                                                                                    // 705.375 → 705
		{"tax after discount", "13", Subscription{TaxRate: dec("8.25"), Discounts: []Discount{{Kind: PercentOff, PercentOff: dec("10")}}}, 855, 635, 0, 7695 + 635}, // 634.8375 → 635
		{"credit after tax", "13", Subscription{TaxRate: dec("10"), CreditBalance: 5000}, 0, 855, 5000, 8550 + 855 - 5000},
		{"credit larger than due", "13", Subscription{TaxRate: dec("10"), CreditBalance: 100000}, 0, 855, 9405, 0},
		{"credit on zero usage", "0", Subscription{CreditBalance: 100000}, 0, 0, 0, 0},
		{"everything", "13", Subscription{TaxRate: dec("20"), CreditBalance: 1000, Discounts: []Discount{{Kind: AmountOff, AmountOff: 550}}}, 550, 1600, 1000, 8000 + 1600 - 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := Rate(plan, tt.sub, period, usage("fonts", tt.qty))
			if inv.Discount != tt.wantDiscount || inv.Tax != tt.wantTax || inv.CreditApplied != tt.wantCredit || inv.Total != tt.wantTotal {
				t.Errorf("Rate(%s fonts) = discount %d tax %d credit %d total %d, want %d %d %d %d",
					tt.qty, inv.Discount, inv.Tax, inv.CreditApplied, inv.Total,
					tt.wantDiscount, tt.wantTax, tt.wantCredit, tt.wantTotal)
			}
		})
	}
}

func TestIncrementGraduated(t *testing.T) {
	plan := fontsPlan()
	early := Rate(plan, Subscription{}, Period{}, usage("fonts", "7"))
	whole := Rate(plan, Subscription{}, Period{}, usage("fonts", "13"))
	if early.Total != 5*700+2*650 {
		t.Fatalf("Rate(7 fonts).Total = %d, want %d", early.Total, 5*700+2*650)
	}
	inc := Increment(whole, early)
	if want := int64(3*650 + 3*600); inc.Total != want || inc.Subtotal != want || inc.Lines[0].Amount != want {
		t.Errorf("Increment(13, 7) total %d subtotal %d line %d, want %d", inc.Total, inc.Subtotal, inc.Lines[0].Amount, want)
	}
	l := inc.Lines[0]
	if !l.Quantity.Equal(dec("6")) || !l.BillableQuantity.Equal(dec("6")) {
		t.Errorf("Increment(13, 7) quantity %s billable %s, want 6 and 6", l.Quantity, l.BillableQuantity)
	}
	// Units 8-10 in the second tier, 11-13 in the third; the first tier is done.
	if len(l.Tiers) != 2 || !l.Tiers[0].Quantity.Equal(dec("3")) || !l.Tiers[0].UnitPrice.Equal(dec("650")) ||
		!l.Tiers[1].Quantity.Equal(dec("3")) || !l.Tiers[1].UnitPrice.Equal(dec("600")) {
		t.Errorf("Increment(13, 7).Tiers = %+v, want 3 at 650 and 3 at 600", l.Tiers)
	}
	if early.Total+inc.Total != whole.Total {
		t.Errorf("early %d + increment %d = %d, want whole %d", early.Total, inc.Total, early.Total+inc.Total, whole.Total)
	}
}

// TestIncrementVolumeDecrease follows Stripe's volume example where 6 units
// ($24) cost less than 5 ($25): the early invoice at 5 units was issued, the
// next threshold check bills nothing and the cycle end credits the difference.
func TestIncrementVolumeDecrease(t *testing.T) {
	plan := onePricePlan("usd", MeterPrice{Meter: "m", Model: Volume, Tiers: []Tier{
		{UpTo: decp("5"), UnitPrice: dec("500")},
		{UpTo: decp("10"), UnitPrice: dec("400")},
		{UpTo: nil, UnitPrice: dec("300")},
	}})
	issued := Rate(plan, Subscription{}, Period{}, usage("m", "5"))
	if issued.Total != 2500 {
		t.Fatalf("Rate(5 units).Total = %d, want 2500", issued.Total)
	}
	inc := Increment(Rate(plan, Subscription{}, Period{}, usage("m", "6")), issued)
	if inc.Total != 2400-2500 {
		t.Errorf("Increment(6, 5).Total = %d, want %d (not billed early)", inc.Total, 2400-2500)
	}
	// Two tier rows: +6 units at 400 and -5 units at 500.
	if got := inc.Lines[0].Tiers; len(got) != 2 || !got[0].Quantity.Equal(dec("6")) || !got[1].Quantity.Equal(dec("-5")) {
		t.Errorf("Increment(6, 5).Tiers = %+v, want +6 at 400 and -5 at 500", got)
	}
	final := Increment(Rate(plan, Subscription{}, Period{}, usage("m", "6")), issued)
	if credit := -final.Total; credit != 100 {
		t.Errorf("cycle-end credit = %d, want 100", credit)
	}
	// Usage that keeps growing makes the increment positive again.
	later := Increment(Rate(plan, Subscription{}, Period{}, usage("m", "12")), issued)
	if later.Total != 12*300-2500 {
		t.Errorf("Increment(12, 5).Total = %d, want %d", later.Total, 12*300-2500)
	}
}

func TestIncrementLineOnlyInPrevious(t *testing.T) {
	prev := Invoice{Lines: []Line{{Product: "a", Meter: "x", Amount: 300, Quantity: dec("3")}}, Subtotal: 300, Total: 300}
	cur := Invoice{Lines: []Line{{Product: "b", Meter: "x", Amount: 200, Quantity: dec("2")}}, Subtotal: 200, Total: 200}
	inc := Increment(cur, prev)
	if len(inc.Lines) != 2 || inc.Lines[0].Amount != 200 || inc.Lines[1].Amount != -300 || !inc.Lines[1].Quantity.Equal(dec("-3")) {
		t.Errorf("Increment() lines = %+v, want b +200 and a -300", inc.Lines)
	}
	if inc.Subtotal != -100 || inc.Total != -100 {
		t.Errorf("Increment() subtotal %d total %d, want -100 and -100", inc.Subtotal, inc.Total)
	}
}

func TestEstimate(t *testing.T) {
	plan := validPlan()
	inv := Estimate(plan, usage("requests", "20000"))
	// $49 platform fee + (20,000 - 10,000 free) × 0.04 cents.
	if want := int64(4900 + 400); inv.Total != want || inv.Discount != 0 || inv.Tax != 0 || inv.CreditApplied != 0 {
		t.Errorf("Estimate() = total %d discount %d tax %d credit %d, want %d 0 0 0", inv.Total, inv.Discount, inv.Tax, inv.CreditApplied, want)
	}
	if got := NewMoney(inv.Total, inv.Currency).String(); got != "$53.00" {
		t.Errorf("Estimate() total shows %q, want %q", got, "$53.00")
	}
}

func BenchmarkRate(b *testing.B) {
	plan := validPlan()
	sub := Subscription{TaxRate: dec("8.25"), CreditBalance: 1000, Discounts: []Discount{{Kind: PercentOff, PercentOff: dec("10")}}}
	u := usage("requests", "1234567", "storage_gb", "42.5", "fonts", "13")
	for b.Loop() {
		Rate(plan, sub, Period{}, u)
	}
}
