package billing

import (
	"time"

	"github.com/shopspring/decimal"
)

// Line is one charge on an invoice: a product's flat fee (Meter empty) or
// the usage of one meter under one price.
type Line struct {
	Product     string     `json:"product"`
	Meter       string     `json:"meter,omitempty"`
	Model       PriceModel `json:"model,omitempty"`
	Description string     `json:"description"`
	// Quantity is the cycle-to-date quantity of the meter (1 for a flat fee).
	Quantity decimal.Decimal `json:"quantity"`
	// FreeUnits is the part of Quantity covered by the free allowance.
	FreeUnits decimal.Decimal `json:"free_units"`
	// BillableQuantity is Quantity - FreeUnits, the quantity priced.
	BillableQuantity decimal.Decimal `json:"billable_quantity"`
	// UnitPrice is the price per unit (per_unit), per package (package) or
	// the flat fee, in minor units; zero for tiered lines.
	UnitPrice decimal.Decimal `json:"unit_price,omitzero"`
	// Packages is the number of packages charged (package model).
	Packages decimal.Decimal `json:"packages,omitzero"`
	// Tiers is the per-tier breakdown of graduated and volume lines.
	Tiers []TierCharge `json:"tiers,omitempty"`
	// Amount is the line's charge in minor units, rounded once.
	Amount int64 `json:"amount"`
}

// Invoice is the result of rating a period. Amounts are in minor units of
// Currency and satisfy Subtotal = Σ Lines[i].Amount and
// Total = Subtotal - Discount + Tax - CreditApplied.
type Invoice struct {
	CustomerID  string    `json:"customer_id,omitempty"`
	PlanID      string    `json:"plan_id,omitempty"`
	Currency    Currency  `json:"currency"`
	PeriodStart time.Time `json:"period_start,omitzero"`
	PeriodEnd   time.Time `json:"period_end,omitzero"`
	Lines       []Line    `json:"lines"`
	Subtotal    int64     `json:"subtotal"`
	// Discount is the total of the subscription's discounts (not above Subtotal).
	Discount int64 `json:"discount"`
	// Tax is TaxRate percent of Subtotal - Discount, rounded once.
	Tax int64 `json:"tax"`
	// CreditApplied is the credit balance used, after tax.
	CreditApplied int64 `json:"credit_applied"`
	Total         int64 `json:"total"`
}

// Rate prices a billing period's usage under a plan for one subscription.
//
// usage maps meter slugs to the period's cycle-to-date quantities; meters the
// plan does not price are ignored, and priced meters without usage yield
// zero-amount lines that are still listed. Lines come in plan order: for each
// product its flat fee (if any) and then one line per meter price.
//
// Each line's amount is computed exactly and rounded once with [Round]. The
// subtotal is the sum of lines. Discounts that are in force at period.Start
// then apply in order to what remains of the subtotal: a percent discount is
// rounded once, an amount_off is capped at what remains. Tax is TaxRate
// percent of subtotal minus discount, rounded once. Finally the credit
// balance pays as much of the result as it can; the total is never negative.
//
// Rate rates whatever it is given: it does not look at the subscription's
// status or trial, so callers skip billing for periods in a trial. The
// invoice is in the plan's currency; callers check that the subscription
// uses the same one. Tiers apply to the quantities given, so pass the
// quantities of the whole cycle so far: tiers reset per cycle, never within
// one (see [Increment] for early invoices).
func Rate(plan Plan, sub Subscription, period Period, usage map[string]decimal.Decimal) Invoice {
	inv := Invoice{
		CustomerID:  sub.CustomerID,
		PlanID:      plan.ID,
		Currency:    plan.Currency,
		PeriodStart: period.Start,
		PeriodEnd:   period.End,
		Lines:       []Line{},
	}
	for _, prod := range plan.Products {
		if prod.FlatFee != 0 {
			one := decimal.NewFromInt(1)
			inv.Lines = append(inv.Lines, Line{
				Product:          prod.ID,
				Description:      prod.Name,
				Quantity:         one,
				FreeUnits:        decimal.Zero,
				BillableQuantity: one,
				UnitPrice:        decimal.NewFromInt(prod.FlatFee),
				Amount:           prod.FlatFee,
			})
		}
		for _, mp := range prod.Prices {
			inv.Lines = append(inv.Lines, rateLine(plan.Currency, prod, mp, usage[mp.Meter]))
		}
	}
	for _, l := range inv.Lines {
		inv.Subtotal += l.Amount
	}
	inv.Discount = discountOn(inv.Subtotal, sub.Discounts, period.Start, plan.Currency)
	taxable := inv.Subtotal - inv.Discount
	if taxable > 0 && sub.TaxRate.IsPositive() {
		inv.Tax = Round(decimal.NewFromInt(taxable).Mul(sub.TaxRate).Shift(-2), plan.Currency)
	}
	due := taxable + inv.Tax
	if due > 0 && sub.CreditBalance > 0 {
		inv.CreditApplied = min(due, sub.CreditBalance)
	}
	inv.Total = due - inv.CreditApplied
	return inv
}

// Estimate rates quantities for a prospect under plan for one cycle, with no
// discounts, tax or credits and no period. To include those, call [Rate] with
// a Subscription that carries them.
func Estimate(plan Plan, quantities map[string]decimal.Decimal) Invoice {
	return Rate(plan, Subscription{PlanID: plan.ID, Currency: plan.Currency}, Period{}, quantities)
}

func rateLine(cur Currency, prod Product, mp MeterPrice, qty decimal.Decimal) Line {
	used := decimal.Max(qty, decimal.Zero)
	free := decimal.Min(decimal.Max(mp.FreeUnits, decimal.Zero), used)
	billable := used.Sub(free)
	c := mp.price(billable)
	l := Line{
		Product:          prod.ID,
		Meter:            mp.Meter,
		Model:            mp.Model,
		Description:      prod.Name + " – " + mp.Meter,
		Quantity:         qty,
		FreeUnits:        free,
		BillableQuantity: billable,
		Packages:         c.packages,
		Tiers:            c.tiers,
		Amount:           Round(c.amount, cur),
	}
	if mp.Model == PerUnit || mp.Model == Package {
		l.UnitPrice = mp.UnitPrice
	}
	return l
}

// discountOn returns the total discount on subtotal from the discounts in
// force at start, applied in order to what remains; never above subtotal.
func discountOn(subtotal int64, discounts []Discount, start time.Time, cur Currency) int64 {
	remaining := subtotal
	for _, d := range discounts {
		if remaining <= 0 || !d.activeAt(start) {
			continue
		}
		var off int64
		switch d.Kind {
		case PercentOff:
			off = Round(decimal.NewFromInt(remaining).Mul(d.PercentOff).Shift(-2), cur)
		case AmountOff:
			off = d.AmountOff
		}
		remaining -= max(0, min(off, remaining))
	}
	return subtotal - max(remaining, 0)
}

// lineKey matches lines of two invoices of the same cycle.
type lineKey struct{ product, meter string }

// Increment returns what an invoice for current must add to an earlier
// invoice previous of the same cycle: every amount and quantity is current
// minus previous, line by line (lines matched by product and meter; a line
// only in previous appears negated). Tier breakdowns are differenced tier by
// tier. Because tiers reset per cycle and not within it, both invoices must
// come from [Rate] over cumulative cycle-to-date usage with the same
// subscription terms (in particular the credit balance at the cycle's start);
// then every figure telescopes, and the increments of any number of early
// invoices plus the cycle-end increment sum exactly to Rate over the whole
// cycle.
//
// Early (threshold) invoices: rate the cumulative usage so far and issue
// Increment(now, lastIssued) only if its Total is positive; otherwise issue
// nothing and keep lastIssued, so the difference is settled later. With
// graduated, per_unit and package prices (and flat fees) increments are never
// negative. Volume tiers can lower the amount as usage grows (a whole
// quantity moving to a cheaper tier), so an increment can be negative.
//
// Cycle end: issue Increment(Rate(whole cycle), lastIssued). If its Total is
// negative, the early invoices billed more than the whole cycle costs: issue
// no invoice and credit -Total to the customer's balance for the next cycle.
func Increment(current, previous Invoice) Invoice {
	out := current
	out.Lines = make([]Line, 0, len(current.Lines))
	prev := make(map[lineKey]Line, len(previous.Lines))
	for _, l := range previous.Lines {
		prev[lineKey{l.Product, l.Meter}] = l
	}
	for _, c := range current.Lines {
		k := lineKey{c.Product, c.Meter}
		if p, ok := prev[k]; ok {
			out.Lines = append(out.Lines, diffLine(c, p))
			delete(prev, k)
		} else {
			out.Lines = append(out.Lines, c)
		}
	}
	for _, p := range previous.Lines {
		if _, ok := prev[lineKey{p.Product, p.Meter}]; ok {
			out.Lines = append(out.Lines, diffLine(Line{Product: p.Product, Meter: p.Meter, Model: p.Model, Description: p.Description}, p))
		}
	}
	out.Subtotal = 0
	for _, l := range out.Lines {
		out.Subtotal += l.Amount
	}
	out.Discount = current.Discount - previous.Discount
	out.Tax = current.Tax - previous.Tax
	out.CreditApplied = current.CreditApplied - previous.CreditApplied
	out.Total = out.Subtotal - out.Discount + out.Tax - out.CreditApplied
	return out
}

func diffLine(c, p Line) Line {
	d := c
	d.Quantity = c.Quantity.Sub(p.Quantity)
	d.FreeUnits = c.FreeUnits.Sub(p.FreeUnits)
	d.BillableQuantity = c.BillableQuantity.Sub(p.BillableQuantity)
	d.Packages = c.Packages.Sub(p.Packages)
	d.Amount = c.Amount - p.Amount
	d.Tiers = diffTiers(c.Tiers, p.Tiers)
	return d
}

func sameTier(a, b TierCharge) bool {
	if !a.From.Equal(b.From) || (a.To == nil) != (b.To == nil) {
		return false
	}
	return a.To == nil || a.To.Equal(*b.To)
}

// diffTiers returns the tier-by-tier difference, leaving out tiers that did
// not change.
func diffTiers(cur, prev []TierCharge) []TierCharge {
	var out []TierCharge
	used := make([]bool, len(prev))
	keep := func(t TierCharge) {
		if !t.Quantity.IsZero() || !t.FlatFee.IsZero() || !t.Amount.IsZero() {
			out = append(out, t)
		}
	}
	for _, c := range cur {
		d := c
		for i, p := range prev {
			if !used[i] && sameTier(c, p) {
				used[i] = true
				d.Quantity = c.Quantity.Sub(p.Quantity)
				d.FlatFee = c.FlatFee.Sub(p.FlatFee)
				d.Amount = c.Amount.Sub(p.Amount)
				break
			}
		}
		keep(d)
	}
	for i, p := range prev {
		if !used[i] {
			keep(TierCharge{From: p.From, To: p.To, UnitPrice: p.UnitPrice,
				Quantity: p.Quantity.Neg(), FlatFee: p.FlatFee.Neg(), Amount: p.Amount.Neg()})
		}
	}
	return out
}
