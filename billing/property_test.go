package billing

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"
)

// randDec returns a random non-negative decimal below max with up to places
// decimal places.
func randDec(r *rand.Rand, max int64, places int) decimal.Decimal {
	p := int32(r.IntN(places + 1))
	scale := int64(1)
	for range p {
		scale *= 10
	}
	return decimal.New(r.Int64N(max*scale), -p)
}

// randPrice returns a valid random price for meter using one of models.
func randPrice(r *rand.Rand, meter string, models []PriceModel) MeterPrice {
	mp := MeterPrice{Meter: meter, Model: models[r.IntN(len(models))]}
	if r.IntN(3) == 0 {
		mp.FreeUnits = randDec(r, 500, 2)
	}
	switch mp.Model {
	case PerUnit:
		mp.UnitPrice = randDec(r, 1000, 6)
	case Package:
		mp.UnitPrice = randDec(r, 5000, 2)
		mp.PackageSize = randDec(r, 100, 1).Add(decimal.NewFromInt(1))
	case Graduated, Volume:
		n := 1 + r.IntN(5)
		upTo := decimal.Zero
		for i := range n {
			t := Tier{UnitPrice: randDec(r, 1000, 4)}
			if r.IntN(3) == 0 {
				t.FlatFee = randDec(r, 5000, 1)
			}
			if i < n-1 {
				upTo = upTo.Add(randDec(r, 300, 1)).Add(decimal.NewFromInt(1))
				u := upTo
				t.UpTo = &u
			}
			mp.Tiers = append(mp.Tiers, t)
		}
	}
	return mp
}

// randPlan returns a valid random plan whose prices use models.
func randPlan(r *rand.Rand, models []PriceModel) Plan {
	curs := []Currency{"usd", "jpy", "kwd", "eur"}
	p := Plan{ID: "p", Name: "P", Currency: curs[r.IntN(len(curs))], Interval: Interval{Month, 1}}
	for i := range 1 + r.IntN(3) {
		prod := Product{ID: fmt.Sprintf("prod%d", i), Name: fmt.Sprintf("Product %d", i)}
		if r.IntN(2) == 0 {
			prod.FlatFee = r.Int64N(10000)
		}
		for j := range 1 + r.IntN(4) {
			// Meters are shared between products on purpose: lines are keyed
			// by product and meter.
			prod.Prices = append(prod.Prices, randPrice(r, fmt.Sprintf("m%d", j), models))
		}
		p.Products = append(p.Products, prod)
	}
	return p
}

func randSub(r *rand.Rand, cur Currency) Subscription {
	s := Subscription{CustomerID: "c", PlanID: "p", Currency: cur, Status: Active}
	if r.IntN(2) == 0 {
		s.TaxRate = randDec(r, 30, 3)
	}
	if r.IntN(2) == 0 {
		s.CreditBalance = r.Int64N(200000)
	}
	for range r.IntN(3) {
		if r.IntN(2) == 0 {
			s.Discounts = append(s.Discounts, Discount{Kind: PercentOff, PercentOff: randDec(r, 100, 2)})
		} else {
			s.Discounts = append(s.Discounts, Discount{Kind: AmountOff, AmountOff: r.Int64N(50000)})
		}
	}
	return s
}

func randUsage(r *rand.Rand) map[string]decimal.Decimal {
	u := map[string]decimal.Decimal{}
	for j := range 4 {
		if r.IntN(5) > 0 {
			u[fmt.Sprintf("m%d", j)] = randDec(r, 3000, 3)
		}
	}
	return u
}

var allModels = []PriceModel{PerUnit, Graduated, Volume, Package}

func TestRateInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		plan := randPlan(r, allModels)
		if err := plan.Validate(); err != nil {
			t.Fatalf("random plan %d is invalid: %v", i, err)
		}
		sub := randSub(r, plan.Currency)
		u := randUsage(r)
		inv := Rate(plan, sub, Period{}, u)

		var sum int64
		for _, l := range inv.Lines {
			if l.Amount < 0 {
				t.Fatalf("case %d: line %s/%s amount %d, want >= 0", i, l.Product, l.Meter, l.Amount)
			}
			sum += l.Amount
		}
		switch {
		case sum != inv.Subtotal:
			t.Fatalf("case %d: sum of lines %d != subtotal %d", i, sum, inv.Subtotal)
		case inv.Total != inv.Subtotal-inv.Discount+inv.Tax-inv.CreditApplied:
			t.Fatalf("case %d: total %d != %d - %d + %d - %d", i, inv.Total, inv.Subtotal, inv.Discount, inv.Tax, inv.CreditApplied)
		case inv.Total < 0:
			t.Fatalf("case %d: total %d is negative", i, inv.Total)
		case inv.Discount < 0 || inv.Discount > inv.Subtotal:
			t.Fatalf("case %d: discount %d outside [0, %d]", i, inv.Discount, inv.Subtotal)
		case inv.CreditApplied < 0 || inv.CreditApplied > sub.CreditBalance:
			t.Fatalf("case %d: credit applied %d outside [0, %d]", i, inv.CreditApplied, sub.CreditBalance)
		}
		var wantLines int
		for _, prod := range plan.Products {
			wantLines += len(prod.Prices)
			if prod.FlatFee != 0 {
				wantLines++
			}
		}
		if len(inv.Lines) != wantLines {
			t.Fatalf("case %d: %d lines, want %d (every price listed, with or without usage)", i, len(inv.Lines), wantLines)
		}
	}
}

// bruteForce prices an integer quantity unit by unit, independently of
// MeterPrice.price: unit u (1-based) belongs to the first tier with u <= up_to.
func bruteForce(mp MeterPrice, q int64) decimal.Decimal {
	total := decimal.Zero
	tierOf := func(u int64) int {
		for i, t := range mp.Tiers {
			if t.UpTo == nil || decimal.NewFromInt(u).LessThanOrEqual(*t.UpTo) {
				return i
			}
		}
		return len(mp.Tiers) - 1
	}
	switch mp.Model {
	case PerUnit:
		for range q {
			total = total.Add(mp.UnitPrice)
		}
	case Package:
		covered := decimal.Zero
		for u := int64(1); u <= q; u++ {
			if decimal.NewFromInt(u).GreaterThan(covered) {
				covered = covered.Add(mp.PackageSize)
				total = total.Add(mp.UnitPrice)
			}
		}
	case Graduated:
		seen := map[int]bool{}
		for u := int64(1); u <= q; u++ {
			i := tierOf(u)
			if !seen[i] {
				seen[i] = true
				total = total.Add(mp.Tiers[i].FlatFee)
			}
			total = total.Add(mp.Tiers[i].UnitPrice)
		}
	case Volume:
		if q > 0 {
			t := mp.Tiers[tierOf(q)]
			for range q {
				total = total.Add(t.UnitPrice)
			}
			total = total.Add(t.FlatFee)
		}
	}
	return total
}

// TestPricesAgainstBruteForce compares every model with a unit-by-unit
// computation for integer quantities and integer tier bounds.
func TestPricesAgainstBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		mp := randPrice(r, "m", allModels)
		mp.FreeUnits = decimal.Zero
		mp.PackageSize = mp.PackageSize.Floor()
		if mp.Model == Package && mp.PackageSize.IsZero() {
			mp.PackageSize = decimal.NewFromInt(1)
		}
		prev := decimal.Zero
		for j := range mp.Tiers {
			if mp.Tiers[j].UpTo != nil {
				u := decimal.Max(mp.Tiers[j].UpTo.Ceil(), prev.Add(decimal.NewFromInt(1)))
				mp.Tiers[j].UpTo, prev = &u, u
			}
		}
		q := r.Int64N(400)
		cur := Currency("usd")
		got := rateOne(t, cur, mp, fmt.Sprint(q)).Amount
		if want := Round(bruteForce(mp, q), cur); got != want {
			t.Fatalf("case %d: Rate(%+v, %d) = %d, want %d", i, mp, q, got, want)
		}
	}
}

// cycleRun bills one cycle through early invoices at random checkpoints of
// cumulative usage and a cycle-end invoice, following the policy documented
// on Increment. It returns the issued invoices (the last is the cycle-end
// increment, which may be negative) and the rating of the whole cycle.
func cycleRun(r *rand.Rand, plan Plan, sub Subscription) (issued []Invoice, whole Invoice) {
	cum := map[string]decimal.Decimal{}
	var lastIssued Invoice
	for range r.IntN(6) {
		for j := range 4 {
			m := fmt.Sprintf("m%d", j)
			if r.IntN(2) == 0 {
				cum[m] = cum[m].Add(randDec(r, 800, 3))
			}
		}
		now := Rate(plan, sub, Period{}, cum)
		if inc := Increment(now, lastIssued); inc.Total > 0 {
			issued = append(issued, inc)
			lastIssued = now
		}
	}
	for j := range 4 {
		m := fmt.Sprintf("m%d", j)
		cum[m] = cum[m].Add(randDec(r, 800, 3))
	}
	whole = Rate(plan, sub, Period{}, cum)
	return append(issued, Increment(whole, lastIssued)), whole
}

// TestSplitCycleEqualsWhole checks that for graduated, per-unit and package
// prices, billing a cycle in pieces through Increment bills exactly what one
// invoice for the whole cycle bills, line by line and in every total, and
// that no piece is negative.
func TestSplitCycleEqualsWhole(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 2000 {
		plan := randPlan(r, []PriceModel{PerUnit, Graduated, Package})
		sub := randSub(r, plan.Currency)
		issued, whole := cycleRun(r, plan, sub)

		lineSums := map[lineKey]int64{}
		var subtotal, discount, tax, credit, total int64
		for n, inv := range issued {
			var sum int64
			for _, l := range inv.Lines {
				if l.Amount < 0 {
					t.Fatalf("case %d invoice %d: line %s/%s increment %d is negative", i, n, l.Product, l.Meter, l.Amount)
				}
				lineSums[lineKey{l.Product, l.Meter}] += l.Amount
				sum += l.Amount
			}
			if sum != inv.Subtotal {
				t.Fatalf("case %d invoice %d: sum of lines %d != subtotal %d", i, n, sum, inv.Subtotal)
			}
			if inv.Total < 0 {
				t.Fatalf("case %d invoice %d: total %d is negative", i, n, inv.Total)
			}
			subtotal += inv.Subtotal
			discount += inv.Discount
			tax += inv.Tax
			credit += inv.CreditApplied
			total += inv.Total
		}
		for _, l := range whole.Lines {
			if got := lineSums[lineKey{l.Product, l.Meter}]; got != l.Amount {
				t.Fatalf("case %d: line %s/%s billed %d over %d invoices, whole cycle %d", i, l.Product, l.Meter, got, len(issued), l.Amount)
			}
		}
		if subtotal != whole.Subtotal || discount != whole.Discount || tax != whole.Tax || credit != whole.CreditApplied || total != whole.Total {
			t.Fatalf("case %d: split billed subtotal %d discount %d tax %d credit %d total %d; whole %d %d %d %d %d",
				i, subtotal, discount, tax, credit, total,
				whole.Subtotal, whole.Discount, whole.Tax, whole.CreditApplied, whole.Total)
		}
	}
}

// TestSplitCycleVolume checks the policy for volume prices: early invoices
// are never negative, and early invoices plus the cycle-end increment (a
// credit when negative) add up to the whole cycle.
func TestSplitCycleVolume(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var credits int
	for i := range 2000 {
		plan := randPlan(r, []PriceModel{Volume})
		sub := randSub(r, plan.Currency)
		issued, whole := cycleRun(r, plan, sub)
		var total int64
		for n, inv := range issued {
			if n < len(issued)-1 && inv.Total <= 0 {
				t.Fatalf("case %d: early invoice %d has total %d, want > 0", i, n, inv.Total)
			}
			total += inv.Total
		}
		if total != whole.Total {
			t.Fatalf("case %d: split billed %d, whole cycle %d", i, total, whole.Total)
		}
		if issued[len(issued)-1].Total < 0 {
			credits++
		}
	}
	if credits == 0 {
		t.Errorf("no random volume cycle ended in a credit; the test does not exercise the negative case")
	}
}
