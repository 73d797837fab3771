package stripe

import (
	"testing"

	"github.com/shopspring/decimal"
)

func TestDecimalPricing(t *testing.T) {
	d := decimal.RequireFromString
	tests := []struct {
		name   string
		line   InvoiceLine
		wantOK bool
		qty    int64
	}{
		{"sub-cent per-unit price", InvoiceLine{Quantity: d("1234567"), UnitAmountDecimal: d("0.04"), Amount: 49383}, true, 1234567},
		{"whole-cent price", InvoiceLine{Quantity: d("3"), UnitAmountDecimal: d("250"), Amount: 750}, true, 3},
		{"fractional quantity (GB)", InvoiceLine{Quantity: d("12.5"), UnitAmountDecimal: d("10"), Amount: 125}, false, 0},
		{"product on a half cent: rounding rules may differ", InvoiceLine{Quantity: d("30"), UnitAmountDecimal: d("0.05"), Amount: 2}, false, 0},
		{"early-invoice difference that Stripe would round otherwise", InvoiceLine{Quantity: d("7"), UnitAmountDecimal: d("0.3"), Amount: 3}, false, 0},
		{"tiered line without a unit price", InvoiceLine{Quantity: d("0"), Amount: 8550}, false, 0},
		{"credit line", InvoiceLine{Amount: -2500}, false, 0},
		{"more decimals than Stripe takes", InvoiceLine{Quantity: d("1"), UnitAmountDecimal: d("0.0000000000001"), Amount: 0}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			qty, unit, ok := decimalPricing(tt.line)
			if ok != tt.wantOK || qty != tt.qty {
				t.Fatalf("decimalPricing(%+v) = %d, %v, %v; want %d, %v", tt.line, qty, unit, ok, tt.qty, tt.wantOK)
			}
			if ok && !decimal.NewFromFloat(unit).Mul(decimal.NewFromInt(qty)).Round(0).Equal(decimal.NewFromInt(tt.line.Amount)) {
				t.Errorf("Stripe would bill %v × %d, not %d", unit, qty, tt.line.Amount)
			}
		})
	}
}
