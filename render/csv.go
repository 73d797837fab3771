package render

import (
	"encoding/csv"
	"io"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
)

// csvHeader names the CSV columns. Amounts and unit prices are in major units
// of the currency as plain decimals ("12.34", "0.0004"), so spreadsheets read
// them as numbers.
var csvHeader = []string{"invoice_id", "customer_id", "currency", "period_start", "period_end", "line", "product", "meter",
	"description", "quantity", "free_units", "billable_quantity", "unit_price", "amount"}

// CSV writes the invoice as CSV: a header, one row per line (line = 1, 2,
// ...), then one row each for subtotal, discount, tax, credit_applied and
// total (line = that name, amount only; reductions are negative).
func CSV(w io.Writer, d Document) error {
	inv := d.Invoice
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	exp := inv.Currency.Exponent()
	major := func(minor int64) string { return decimal.New(minor, -exp).StringFixed(exp) }
	base := []string{d.ID, d.Customer.ID, inv.Currency.String(), day(inv.PeriodStart), day(inv.PeriodEnd)}
	for i, l := range inv.Lines {
		unit := ""
		if !l.UnitPrice.IsZero() {
			unit = l.UnitPrice.Shift(-exp).String()
		}
		row := append(append([]string{}, base...), strconv.Itoa(i+1), l.Product, l.Meter, l.Description,
			l.Quantity.String(), l.FreeUnits.String(), l.BillableQuantity.String(), unit, major(l.Amount))
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		name   string
		amount int64
	}{{"subtotal", inv.Subtotal}, {"discount", -inv.Discount}, {"tax", inv.Tax}, {"credit_applied", -inv.CreditApplied}, {"total", inv.Total}} {
		row := append(append([]string{}, base...), t.name, "", "", "", "", "", "", "", major(t.amount))
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func day(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
