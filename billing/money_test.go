package billing

import (
	"math"
	"testing"

	"github.com/shopspring/decimal"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func decp(s string) *decimal.Decimal { d := dec(s); return &d }

func TestParseCurrency(t *testing.T) {
	tests := []struct {
		in      string
		want    Currency
		wantErr bool
	}{
		{"usd", "usd", false},
		{"USD", "usd", false},
		{" Eur ", "eur", false},
		{"jpy", "jpy", false},
		{"kwd", "kwd", false},
		{"xyz", "", true},
		{"", "", true},
		{"us", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCurrency(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseCurrency(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestCurrencyExponent(t *testing.T) {
	tests := []struct {
		cur  Currency
		want int32
	}{
		{"usd", 2}, {"eur", 2}, {"gbp", 2}, {"jpy", 0}, {"krw", 0}, {"bhd", 3}, {"kwd", 3},
	}
	for _, tt := range tests {
		if got := tt.cur.Exponent(); got != tt.want {
			t.Errorf("Currency(%q).Exponent() = %d, want %d", tt.cur, got, tt.want)
		}
	}
}

func TestRound(t *testing.T) {
	tests := []struct {
		amount string
		cur    Currency
		want   int64
	}{
		{"1.5", "usd", 2}, // Stripe's example: 0.05 cents × 30 = 1.5 cents, charged 2 cents
		{"2.5", "usd", 3}, // half away from zero, not to even
		{"1.49", "usd", 1},
		{"0.4999999", "usd", 0},
		{"-1.5", "usd", -2},
		{"-0.5", "usd", -1},
		{"-1.49", "usd", -1},
		{"1200.5", "jpy", 1201}, // yen are the minor unit of jpy
		{"1234.5", "kwd", 1235},
		{"42", "usd", 42},
	}
	for _, tt := range tests {
		t.Run(tt.amount+" "+string(tt.cur), func(t *testing.T) {
			if got := Round(dec(tt.amount), tt.cur); got != tt.want {
				t.Errorf("Round(%s, %s) = %d, want %d", tt.amount, tt.cur, got, tt.want)
			}
		})
	}
}

func TestMinorUnits(t *testing.T) {
	tests := []struct {
		major string
		cur   Currency
		want  int64
	}{
		{"12.34", "usd", 1234},
		{"12.345", "usd", 1235},
		{"1200.4", "jpy", 1200},
		{"1.2345", "kwd", 1235},
	}
	for _, tt := range tests {
		if got := MinorUnits(dec(tt.major), tt.cur); got != tt.want {
			t.Errorf("MinorUnits(%s, %s) = %d, want %d", tt.major, tt.cur, got, tt.want)
		}
	}
}

func TestMoneyString(t *testing.T) {
	tests := []struct {
		m    Money
		want string
	}{
		{Money{1234, "usd"}, "$12.34"},
		{Money{0, "usd"}, "$0.00"},
		{Money{5, "usd"}, "$0.05"},
		{Money{-50, "eur"}, "-€0.50"},
		{Money{123456789, "usd"}, "$1,234,567.89"},
		{Money{1200, "jpy"}, "¥1,200"},
		{Money{999, "jpy"}, "¥999"},
		{Money{1234, "kwd"}, "KWD 1.234"},
		{Money{123450, "chf"}, "CHF 1,234.50"},
		{Money{100, "gbp"}, "£1.00"},
		{Money{math.MinInt64, "jpy"}, "-¥9,223,372,036,854,775,808"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.m.String(); got != tt.want {
				t.Errorf("Money%v.String() = %q, want %q", tt.m.Amount, got, tt.want)
			}
		})
	}
}

func TestMoneyArithmetic(t *testing.T) {
	a, b := NewMoney(1250, "usd"), NewMoney(250, "usd")
	if got, err := a.Add(b); err != nil || got != NewMoney(1500, "usd") {
		t.Errorf("Add = %v, %v; want $15.00", got, err)
	}
	if got, err := a.Sub(b); err != nil || got != NewMoney(1000, "usd") {
		t.Errorf("Sub = %v, %v; want $10.00", got, err)
	}
	if _, err := a.Add(NewMoney(1, "eur")); err == nil {
		t.Errorf("Add(usd, eur) = nil error, want a currency mismatch")
	}
	if got := NewMoney(1234, "kwd").Major(); !got.Equal(dec("1.234")) {
		t.Errorf("Major() = %s, want 1.234", got)
	}
}
