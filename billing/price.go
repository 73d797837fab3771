package billing

import (
	"fmt"
	"strconv"

	"github.com/shopspring/decimal"
)

// PriceModel names how a meter's billable quantity turns into an amount.
type PriceModel string

// The price models a MeterPrice can use.
const (
	// PerUnit charges UnitPrice for every billable unit.
	PerUnit PriceModel = "per_unit"
	// Graduated charges each unit at the price of the tier it falls into,
	// plus the flat fee of every tier the quantity reaches.
	Graduated PriceModel = "graduated"
	// Volume charges every unit at the price of the single tier the whole
	// quantity falls into, plus that tier's flat fee.
	Volume PriceModel = "volume"
	// Package charges UnitPrice per started package of PackageSize units:
	// partial packages are rounded up (1 unit is 1 package, N+1 units are 2).
	Package PriceModel = "package"
)

// maxDecimalPlaces is the precision Stripe accepts for unit_amount_decimal.
const maxDecimalPlaces = 12

// maxTiers bounds the number of tiers in one price.
const maxTiers = 50

// Tier is one step of a graduated or volume price. A tier covers quantities
// above the previous tier's UpTo (0 for the first tier) up to and including
// its own UpTo; a nil UpTo means no upper bound and is required on the last
// tier. With integer quantities, tiers with UpTo 5, 10, nil cover units 1-5,
// 6-10 and 11+ as in Stripe.
type Tier struct {
	// UpTo is the inclusive upper bound of the tier; nil (JSON null) is infinity.
	UpTo *decimal.Decimal `json:"up_to"`
	// UnitPrice is the price of one unit in minor units; it may be fractional.
	UnitPrice decimal.Decimal `json:"unit_price"`
	// FlatFee is charged once, in minor units, when any quantity falls into
	// the tier (graduated) or when the quantity selects the tier (volume).
	FlatFee decimal.Decimal `json:"flat_fee,omitzero"`
}

// MeterPrice prices one meter of a product.
type MeterPrice struct {
	// Meter is the slug of the meter whose cycle-to-date quantity is priced.
	Meter string `json:"meter"`
	// Model selects the price model.
	Model PriceModel `json:"model"`
	// UnitPrice is in minor units and may be fractional (0.04 is $0.0004):
	// the price per unit for per_unit, the price per package for package.
	// Unused by graduated and volume.
	UnitPrice decimal.Decimal `json:"unit_price,omitzero"`
	// PackageSize is the number of units in one package (package model only).
	PackageSize decimal.Decimal `json:"package_size,omitzero"`
	// Tiers are the steps of a graduated or volume price, ascending by UpTo.
	Tiers []Tier `json:"tiers,omitempty"`
	// FreeUnits are granted per cycle and subtracted from the cycle's
	// quantity before the price model (and its tiers) is applied.
	FreeUnits decimal.Decimal `json:"free_units,omitzero"`
}

// FieldError reports an invalid field of a plan, price or subscription. Field
// is a path such as "products[0].prices[2].tiers[1].up_to" so an HTTP layer
// can answer 400 naming the field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error returns "field: message".
func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// under prefixes the field path of err (a *FieldError or nil) with path.
func under(path string, err *FieldError) *FieldError {
	if err == nil {
		return nil
	}
	f := path
	if err.Field != "" {
		if err.Field[0] == '[' {
			f += err.Field
		} else {
			f += "." + err.Field
		}
	}
	return &FieldError{Field: f, Message: err.Message}
}

func indexed(name string, i int) string { return name + "[" + strconv.Itoa(i) + "]" }

// Validate checks the price and returns a *FieldError naming the first
// invalid field (relative to the price, like "tiers[1].up_to"), or nil.
func (p MeterPrice) Validate() error {
	if fe := p.validate(); fe != nil {
		return fe
	}
	return nil
}

func checkAmount(field string, d decimal.Decimal) *FieldError {
	if d.IsNegative() {
		return fieldErr(field, "must not be negative")
	}
	if -d.Exponent() > maxDecimalPlaces && !d.Equal(d.Round(maxDecimalPlaces)) {
		return fieldErr(field, "must have at most %d decimal places", maxDecimalPlaces)
	}
	return nil
}

func (p MeterPrice) validate() *FieldError {
	switch {
	case p.Meter == "":
		return fieldErr("meter", "is required")
	case len(p.Meter) > 100:
		return fieldErr("meter", "must be at most 100 characters")
	}
	if fe := checkAmount("free_units", p.FreeUnits); fe != nil {
		return fe
	}
	switch p.Model {
	case PerUnit, Package:
		if fe := checkAmount("unit_price", p.UnitPrice); fe != nil {
			return fe
		}
		if len(p.Tiers) > 0 {
			return fieldErr("tiers", "must be empty for a %s price", p.Model)
		}
		if p.Model == PerUnit && !p.PackageSize.IsZero() {
			return fieldErr("package_size", "must be empty for a per_unit price")
		}
		if p.Model == Package && !p.PackageSize.IsPositive() {
			return fieldErr("package_size", "must be greater than 0")
		}
	case Graduated, Volume:
		if !p.UnitPrice.IsZero() {
			return fieldErr("unit_price", "must be empty for a %s price; set tiers[].unit_price", p.Model)
		}
		if !p.PackageSize.IsZero() {
			return fieldErr("package_size", "must be empty for a %s price", p.Model)
		}
		return validateTiers(p.Tiers)
	case "":
		return fieldErr("model", "is required (per_unit, graduated, volume or package)")
	default:
		return fieldErr("model", "unknown model %q (want per_unit, graduated, volume or package)", p.Model)
	}
	return nil
}

func validateTiers(tiers []Tier) *FieldError {
	if len(tiers) == 0 {
		return fieldErr("tiers", "must have at least one tier")
	}
	if len(tiers) > maxTiers {
		return fieldErr("tiers", "must have at most %d tiers", maxTiers)
	}
	prev := decimal.Zero
	for i, t := range tiers {
		path := indexed("tiers", i)
		last := i == len(tiers)-1
		switch {
		case t.UpTo == nil && !last:
			return fieldErr(path+".up_to", "only the last tier may be unbounded")
		case t.UpTo != nil && last:
			return fieldErr(path+".up_to", "must be null: the last tier is unbounded")
		case t.UpTo != nil && !t.UpTo.GreaterThan(prev):
			return fieldErr(path+".up_to", "must be greater than %s", prev)
		}
		if fe := checkAmount(path+".unit_price", t.UnitPrice); fe != nil {
			return fe
		}
		if fe := checkAmount(path+".flat_fee", t.FlatFee); fe != nil {
			return fe
		}
		if t.UpTo != nil {
			prev = *t.UpTo
		}
	}
	return nil
}

// TierCharge is the part of a line charged in one tier. The tier covers
// quantities above From up to and including To (nil To: no upper bound).
type TierCharge struct {
	From      decimal.Decimal  `json:"from"`
	To        *decimal.Decimal `json:"to"`
	Quantity  decimal.Decimal  `json:"quantity"`
	UnitPrice decimal.Decimal  `json:"unit_price"`
	FlatFee   decimal.Decimal  `json:"flat_fee"`
	// Amount is the exact, unrounded charge of the tier in minor units:
	// Quantity × UnitPrice + FlatFee. The line rounds the sum of its tiers.
	Amount decimal.Decimal `json:"amount"`
}

// charge is the exact result of applying a price to a billable quantity.
type charge struct {
	amount   decimal.Decimal // exact, minor units
	tiers    []TierCharge
	packages decimal.Decimal
}

// price applies p's model to a billable quantity (already net of free
// units, never negative) and returns the exact amount. A zero quantity
// costs nothing in every model: no tier is reached, so no flat fee applies.
func (p MeterPrice) price(q decimal.Decimal) charge {
	if !q.IsPositive() {
		return charge{amount: decimal.Zero}
	}
	switch p.Model {
	case PerUnit:
		return charge{amount: q.Mul(p.UnitPrice)}
	case Package:
		n, rem := q.QuoRem(p.PackageSize, 0)
		if !rem.IsZero() {
			n = n.Add(decimal.NewFromInt(1))
		}
		return charge{amount: n.Mul(p.UnitPrice), packages: n}
	case Graduated:
		var c charge
		c.amount = decimal.Zero
		from := decimal.Zero
		for _, t := range p.Tiers {
			if !q.GreaterThan(from) {
				break
			}
			top := q
			if t.UpTo != nil && t.UpTo.LessThan(q) {
				top = *t.UpTo
			}
			tc := tierCharge(t, from, top.Sub(from))
			c.tiers = append(c.tiers, tc)
			c.amount = c.amount.Add(tc.Amount)
			if t.UpTo == nil {
				break
			}
			from = *t.UpTo
		}
		return c
	case Volume:
		from := decimal.Zero
		for _, t := range p.Tiers {
			if t.UpTo == nil || q.LessThanOrEqual(*t.UpTo) {
				tc := tierCharge(t, from, q)
				return charge{amount: tc.Amount, tiers: []TierCharge{tc}}
			}
			from = *t.UpTo
		}
	}
	return charge{amount: decimal.Zero}
}

func tierCharge(t Tier, from, qty decimal.Decimal) TierCharge {
	var to *decimal.Decimal
	if t.UpTo != nil {
		u := *t.UpTo // the charge must not alias the plan's tier
		to = &u
	}
	return TierCharge{
		From:      from,
		To:        to,
		Quantity:  qty,
		UnitPrice: t.UnitPrice,
		FlatFee:   t.FlatFee,
		Amount:    qty.Mul(t.UnitPrice).Add(t.FlatFee),
	}
}
