package billing

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"
)

// stripeTiers are the tiers of Stripe's tiered-pricing example (Typographic):
// units 1-5 at $7, 6-10 at $6.50, 11+ at $6.
func stripeTiers() []Tier {
	return []Tier{
		{UpTo: decp("5"), UnitPrice: dec("700")},
		{UpTo: decp("10"), UnitPrice: dec("650")},
		{UpTo: nil, UnitPrice: dec("600")},
	}
}

// onePricePlan is a plan with a single product that prices one meter.
func onePricePlan(cur Currency, mp MeterPrice) Plan {
	return Plan{
		ID: "plan", Name: "Plan", Currency: cur, Interval: Interval{Month, 1},
		Products: []Product{{ID: "api", Name: "API", Prices: []MeterPrice{mp}}},
	}
}

// rateOne rates qty of mp's meter and returns the single line.
func rateOne(t *testing.T, cur Currency, mp MeterPrice, qty string) Line {
	t.Helper()
	plan := onePricePlan(cur, mp)
	if err := plan.Validate(); err != nil {
		t.Fatalf("plan.Validate() = %v, want nil", err)
	}
	inv := Estimate(plan, map[string]decimal.Decimal{mp.Meter: dec(qty)})
	if len(inv.Lines) != 1 {
		t.Fatalf("Estimate(%s) has %d lines, want 1", qty, len(inv.Lines))
	}
	return inv.Lines[0]
}

func TestPriceModels(t *testing.T) {
	graduated := MeterPrice{Meter: "fonts", Model: Graduated, Tiers: stripeTiers()}
	volume := MeterPrice{Meter: "fonts", Model: Volume, Tiers: stripeTiers()}
	// Stripe's package example: $5 per 5 units, partial packages rounded up.
	pkg := MeterPrice{Meter: "calls", Model: Package, UnitPrice: dec("500"), PackageSize: dec("5")}
	// $0.0004 per call is 0.04 cents.
	subCent := MeterPrice{Meter: "calls", Model: PerUnit, UnitPrice: dec("0.04")}
	// Stripe's decimal-amounts example: 0.05 cents per MB.
	stripeDecimal := MeterPrice{Meter: "mb", Model: PerUnit, UnitPrice: dec("0.05")}
	// Stripe's second tiers example: $5, $4, $3, $2, then $1.
	fiveTiers := []Tier{
		{UpTo: decp("5"), UnitPrice: dec("500")},
		{UpTo: decp("10"), UnitPrice: dec("400")},
		{UpTo: decp("15"), UnitPrice: dec("300")},
		{UpTo: decp("20"), UnitPrice: dec("200")},
		{UpTo: nil, UnitPrice: dec("100")},
	}
	// A flat $20 for the first 10 units, then 1 cent per unit.
	flatFirst := []Tier{
		{UpTo: decp("10"), FlatFee: dec("2000")},
		{UpTo: nil, UnitPrice: dec("1"), FlatFee: dec("0")},
	}
	tests := []struct {
		name string
		cur  Currency
		mp   MeterPrice
		qty  string
		want int64
	}{
		{"graduated stripe example 13 units", "usd", graduated, "13", 5*700 + 5*650 + 3*600},
		{"graduated zero", "usd", graduated, "0", 0},
		{"graduated one unit", "usd", graduated, "1", 700},
		{"graduated exactly at up_to", "usd", graduated, "5", 5 * 700},
		{"graduated one above up_to", "usd", graduated, "6", 5*700 + 650},
		{"graduated at second up_to", "usd", graduated, "10", 5*700 + 5*650},
		{"graduated one above second up_to", "usd", graduated, "11", 5*700 + 5*650 + 600},
		{"graduated fractional quantity", "usd", graduated, "5.5", 5*700 + 325},
		{"graduated five tiers 6 units", "usd", MeterPrice{Meter: "m", Model: Graduated, Tiers: fiveTiers}, "6", 2900},
		{"graduated flat fee first tier reached", "usd", MeterPrice{Meter: "m", Model: Graduated, Tiers: flatFirst}, "1", 2000},
		{"graduated flat fee zero usage", "usd", MeterPrice{Meter: "m", Model: Graduated, Tiers: flatFirst}, "0", 0},
		{"graduated flat fee beyond", "usd", MeterPrice{Meter: "m", Model: Graduated, Tiers: flatFirst}, "12", 2000 + 2},
		{"volume stripe example 13 units", "usd", volume, "13", 13 * 600},
		{"volume zero", "usd", volume, "0", 0},
		{"volume exactly at up_to", "usd", volume, "5", 5 * 700},
		{"volume one above up_to", "usd", volume, "6", 6 * 650},
		{"volume stripe table 20", "usd", volume, "20", 20 * 600},
		{"volume stripe table 25", "usd", volume, "25", 25 * 600},
		{"volume five tiers 6 units", "usd", MeterPrice{Meter: "m", Model: Volume, Tiers: fiveTiers}, "6", 2400},
		{"volume five tiers 20 units", "usd", MeterPrice{Meter: "m", Model: Volume, Tiers: fiveTiers}, "20", 4000},
		{"volume five tiers 25 units", "usd", MeterPrice{Meter: "m", Model: Volume, Tiers: fiveTiers}, "25", 2500},
		{"volume flat fee of first tier", "usd", MeterPrice{Meter: "m", Model: Volume, Tiers: flatFirst}, "3", 2000},
		{"volume flat fee of selected tier", "usd", MeterPrice{Meter: "m", Model: Volume, Tiers: flatFirst}, "12", 12},
		{"package 1 unit is 1 package", "usd", pkg, "1", 500},
		{"package exactly N", "usd", pkg, "5", 500},
		{"package N+1 is 2 packages", "usd", pkg, "6", 1000},
		{"package 2N+1", "usd", pkg, "11", 1500},
		{"package fractional excess", "usd", pkg, "5.0001", 1000},
		{"package zero", "usd", pkg, "0", 0},
		{"sub-cent per unit 1,234,567 calls", "usd", subCent, "1234567", 49383}, // 49382.68 cents
		{"stripe decimal example 30 MB", "usd", stripeDecimal, "30", 2},         // 1.5 cents
		{"per unit zero", "usd", subCent, "0", 0},
		{"jpy fractional unit price", "jpy", MeterPrice{Meter: "m", Model: PerUnit, UnitPrice: dec("0.3")}, "1005", 302}, // 301.5 yen
		{"jpy half yen", "jpy", MeterPrice{Meter: "m", Model: PerUnit, UnitPrice: dec("0.5")}, "3", 2},
		{"kwd three decimals", "kwd", MeterPrice{Meter: "m", Model: PerUnit, UnitPrice: dec("1.25")}, "3", 4}, // 3.75 fils
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rateOne(t, tt.cur, tt.mp, tt.qty)
			if got.Amount != tt.want {
				t.Errorf("Rate(%s, %s units) amount = %s, want %s", tt.mp.Model, tt.qty,
					NewMoney(got.Amount, tt.cur), NewMoney(tt.want, tt.cur))
			}
		})
	}
}

func TestGraduatedBreakdown(t *testing.T) {
	l := rateOne(t, "usd", MeterPrice{Meter: "fonts", Model: Graduated, Tiers: stripeTiers()}, "13")
	want := []struct {
		from, qty, amount string
		to                *decimal.Decimal
	}{
		{"0", "5", "3500", decp("5")},
		{"5", "5", "3250", decp("10")},
		{"10", "3", "1800", nil},
	}
	if len(l.Tiers) != len(want) {
		t.Fatalf("Rate(graduated, 13).Tiers has %d tiers, want %d", len(l.Tiers), len(want))
	}
	for i, w := range want {
		got := l.Tiers[i]
		toOK := (got.To == nil && w.to == nil) || (got.To != nil && w.to != nil && got.To.Equal(*w.to))
		if !got.From.Equal(dec(w.from)) || !toOK || !got.Quantity.Equal(dec(w.qty)) || !got.Amount.Equal(dec(w.amount)) {
			t.Errorf("Tiers[%d] = from %s qty %s amount %s, want from %s qty %s amount %s",
				i, got.From, got.Quantity, got.Amount, w.from, w.qty, w.amount)
		}
	}
}

func TestVolumeBreakdown(t *testing.T) {
	l := rateOne(t, "usd", MeterPrice{Meter: "fonts", Model: Volume, Tiers: stripeTiers()}, "13")
	if len(l.Tiers) != 1 || !l.Tiers[0].Quantity.Equal(dec("13")) || !l.Tiers[0].UnitPrice.Equal(dec("600")) {
		t.Errorf("Rate(volume, 13).Tiers = %+v, want one tier of 13 units at 600", l.Tiers)
	}
}

func TestFreeUnits(t *testing.T) {
	perUnit := MeterPrice{Meter: "calls", Model: PerUnit, UnitPrice: dec("2"), FreeUnits: dec("1000")}
	graduated := MeterPrice{Meter: "fonts", Model: Graduated, Tiers: stripeTiers(), FreeUnits: dec("3")}
	tests := []struct {
		name               string
		mp                 MeterPrice
		qty                string
		wantFree, wantBill string
		wantAmount         int64
	}{
		{"allowance larger than usage", perUnit, "500", "500", "0", 0},
		{"usage equals allowance", perUnit, "1000", "1000", "0", 0},
		{"usage above allowance", perUnit, "1500", "1000", "500", 1000},
		{"zero usage", perUnit, "0", "0", "0", 0},
		{"tiers apply after the allowance", graduated, "16", "3", "13", 5*700 + 5*650 + 3*600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := rateOne(t, "usd", tt.mp, tt.qty)
			if !l.Quantity.Equal(dec(tt.qty)) || !l.FreeUnits.Equal(dec(tt.wantFree)) ||
				!l.BillableQuantity.Equal(dec(tt.wantBill)) || l.Amount != tt.wantAmount {
				t.Errorf("Rate(%s units) = quantity %s free %s billable %s amount %d, want %s, %s, %s, %d",
					tt.qty, l.Quantity, l.FreeUnits, l.BillableQuantity, l.Amount,
					tt.qty, tt.wantFree, tt.wantBill, tt.wantAmount)
			}
		})
	}
}

func TestMeterPriceValidate(t *testing.T) {
	valid := func() MeterPrice { return MeterPrice{Meter: "fonts", Model: Graduated, Tiers: stripeTiers()} }
	tests := []struct {
		name      string
		mutate    func(*MeterPrice)
		wantField string
	}{
		{"valid graduated", func(*MeterPrice) {}, ""},
		{"valid volume", func(p *MeterPrice) { p.Model = Volume }, ""},
		{"valid per unit", func(p *MeterPrice) { p.Model, p.Tiers, p.UnitPrice = PerUnit, nil, dec("0.0004") }, ""},
		{"valid package", func(p *MeterPrice) { p.Model, p.Tiers, p.UnitPrice, p.PackageSize = Package, nil, dec("500"), dec("5") }, ""},
		{"missing meter", func(p *MeterPrice) { p.Meter = "" }, "meter"},
		{"missing model", func(p *MeterPrice) { p.Model = "" }, "model"},
		{"unknown model", func(p *MeterPrice) { p.Model = "stairstep" }, "model"},
		{"negative free units", func(p *MeterPrice) { p.FreeUnits = dec("-1") }, "free_units"},
		{"no tiers", func(p *MeterPrice) { p.Tiers = nil }, "tiers"},
		{"tiers not ascending", func(p *MeterPrice) { p.Tiers[1].UpTo = decp("5") }, "tiers[1].up_to"},
		{"tiers descending", func(p *MeterPrice) { p.Tiers[1].UpTo = decp("3") }, "tiers[1].up_to"},
		{"first up_to zero", func(p *MeterPrice) { p.Tiers[0].UpTo = decp("0") }, "tiers[0].up_to"},
		{"last tier bounded", func(p *MeterPrice) { p.Tiers[2].UpTo = decp("100") }, "tiers[2].up_to"},
		{"middle tier unbounded", func(p *MeterPrice) { p.Tiers[1].UpTo = nil }, "tiers[1].up_to"},
		{"negative tier price", func(p *MeterPrice) { p.Tiers[2].UnitPrice = dec("-1") }, "tiers[2].unit_price"},
		{"negative tier flat fee", func(p *MeterPrice) { p.Tiers[0].FlatFee = dec("-100") }, "tiers[0].flat_fee"},
		{"too precise tier price", func(p *MeterPrice) { p.Tiers[0].UnitPrice = dec("0.0000000000001") }, "tiers[0].unit_price"},
		{"unit price on tiered", func(p *MeterPrice) { p.UnitPrice = dec("5") }, "unit_price"},
		{"package size on tiered", func(p *MeterPrice) { p.PackageSize = dec("5") }, "package_size"},
		{"per unit negative", func(p *MeterPrice) { p.Model, p.Tiers, p.UnitPrice = PerUnit, nil, dec("-0.5") }, "unit_price"},
		{"per unit with tiers", func(p *MeterPrice) { p.Model = PerUnit }, "tiers"},
		{"per unit with package size", func(p *MeterPrice) { p.Model, p.Tiers, p.PackageSize = PerUnit, nil, dec("5") }, "package_size"},
		{"package size zero", func(p *MeterPrice) { p.Model, p.Tiers, p.UnitPrice = Package, nil, dec("500") }, "package_size"},
		{"package size negative", func(p *MeterPrice) { p.Model, p.Tiers, p.PackageSize = Package, nil, dec("-5") }, "package_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := valid()
			tt.mutate(&p)
			err := p.Validate()
			var fe *FieldError
			switch {
			case tt.wantField == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantField != "" && !errors.As(err, &fe):
				t.Errorf("Validate() = %v, want a *FieldError for %s", err, tt.wantField)
			case tt.wantField != "" && fe.Field != tt.wantField:
				t.Errorf("Validate() field = %q (%v), want %q", fe.Field, err, tt.wantField)
			}
		})
	}
}
