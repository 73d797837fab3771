// Package render exports invoices for people and spreadsheets: a PDF that
// reads like an invoice (go-pdf/fpdf) and a CSV of its lines and totals.
package render

import (
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/billing"
)

// Customer is who an invoice bills.
type Customer struct {
	ID    string
	Name  string
	Email string
}

// Document is an invoice to render.
type Document struct {
	// ID is billcycle's invoice id.
	ID string
	// Kind is "threshold" or "cycle".
	Kind            string
	Status          string
	StripeInvoiceID string
	Customer        Customer
	IssuedAt        time.Time
	DueAt           time.Time
	// TaxRate is the percentage the tax line was computed with (display only).
	TaxRate decimal.Decimal
	// Invoice holds the period, lines and totals.
	Invoice billing.Invoice
}

// symbols are the currency prefixes the PDF's font (Windows-1252) can draw;
// other currencies are written with their code, as in "KRW 1,200".
var symbols = map[billing.Currency]string{"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}

func prefix(cur billing.Currency) string {
	if s, ok := symbols[cur]; ok {
		return s
	}
	return cur.String() + " "
}

// Money formats minor units of cur for people: "$1,234.50", "¥1,200",
// "-€0.50", "KRW 1,200".
func Money(amount int64, cur billing.Currency) string {
	return formatMajor(decimal.New(amount, -cur.Exponent()), cur, cur.Exponent())
}

// UnitPrice formats a unit price given in (possibly fractional) minor units
// as a price in major units, keeping every significant digit: 0.04 cents is
// "$0.0004", 150 cents is "$1.50".
func UnitPrice(minor decimal.Decimal, cur billing.Currency) string {
	exp := cur.Exponent()
	major := minor.Shift(-exp)
	places := exp
	if e := -major.Exponent(); e > places {
		places = e
		// trim trailing zeros beyond the currency's own precision
		s := major.StringFixed(places)
		for places > exp && strings.HasSuffix(s, "0") {
			s = s[:len(s)-1]
			places--
		}
	}
	return formatMajor(major, cur, places)
}

func formatMajor(v decimal.Decimal, cur billing.Currency, places int32) string {
	s := v.Abs().StringFixed(places)
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if v.IsNegative() {
		b.WriteByte('-')
	}
	b.WriteString(prefix(cur))
	b.WriteString(group(intPart))
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// Quantity formats a quantity with thousands separators: "123,457", "12.5".
func Quantity(q decimal.Decimal) string {
	s := q.Abs().String()
	intPart, frac, hasFrac := strings.Cut(s, ".")
	out := group(intPart)
	if hasFrac {
		out += "." + frac
	}
	if q.IsNegative() {
		out = "-" + out
	}
	return out
}

func group(digits string) string {
	var b strings.Builder
	for i, r := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// periodText writes a period as the days it covers: the end is exclusive, so
// a period ending at midnight on April 1 is shown as ending March 31.
func periodText(p billing.Invoice) string {
	if p.PeriodStart.IsZero() {
		return ""
	}
	last := p.PeriodEnd.Add(-time.Nanosecond)
	return p.PeriodStart.UTC().Format("2 Jan 2006") + " – " + last.UTC().Format("2 Jan 2006")
}

// tierText describes one tier charge: "units 11–∞: 2.5 × $0.50 + $1.00 flat".
func tierText(t billing.TierCharge, cur billing.Currency) string {
	from := t.From.Add(decimal.NewFromInt(1))
	to := "and above"
	if t.To != nil {
		to = "– " + Quantity(*t.To)
	}
	s := "units " + Quantity(from) + " " + to + ": " + Quantity(t.Quantity) + " × " + UnitPrice(t.UnitPrice, cur)
	if !t.FlatFee.IsZero() {
		s += " + " + UnitPrice(t.FlatFee, cur) + " flat"
	}
	return s
}
