package billing

import (
	"fmt"
	"strings"

	"github.com/shopspring/decimal"
)

// Currency is an ISO 4217 currency code in lowercase, as Stripe writes it
// ("usd", "jpy"). Use [ParseCurrency] to obtain one from user input.
type Currency string

// currencyInfo describes how a currency is written.
type currencyInfo struct {
	exponent int32  // digits after the decimal point of the major unit (ISO 4217)
	symbol   string // prefix used by Money.String; empty means the upper-case code
}

// currencies lists the supported currencies with their ISO 4217 minor-unit
// exponents. Stripe deviates from ISO for a few of them when charging (for
// example ISK, HUF, TWD, UGX); the Stripe integration translates those.
var currencies = map[Currency]currencyInfo{
	"usd": {2, "$"},
	"eur": {2, "€"},
	"gbp": {2, "£"},
	"jpy": {0, "¥"},
	"krw": {0, "₩"},
	"inr": {2, "₹"},
	"aud": {2, ""},
	"cad": {2, ""},
	"nzd": {2, ""},
	"chf": {2, ""},
	"sek": {2, ""},
	"nok": {2, ""},
	"dkk": {2, ""},
	"pln": {2, ""},
	"czk": {2, ""},
	"huf": {2, ""},
	"cny": {2, ""},
	"hkd": {2, ""},
	"sgd": {2, ""},
	"twd": {2, ""},
	"thb": {2, ""},
	"myr": {2, ""},
	"php": {2, ""},
	"idr": {2, ""},
	"brl": {2, ""},
	"mxn": {2, ""},
	"zar": {2, ""},
	"ils": {2, ""},
	"try": {2, ""},
	"aed": {2, ""},
	"sar": {2, ""},
	"clp": {0, ""},
	"vnd": {0, ""},
	"isk": {0, ""},
	"ugx": {0, ""},
	"pyg": {0, ""},
	"bhd": {3, ""},
	"kwd": {3, ""},
	"jod": {3, ""},
	"omr": {3, ""},
	"tnd": {3, ""},
}

// ParseCurrency returns the Currency for an ISO 4217 code in any letter case.
// It rejects codes that are not in billcycle's currency table.
func ParseCurrency(code string) (Currency, error) {
	c := Currency(strings.ToLower(strings.TrimSpace(code)))
	if _, ok := currencies[c]; !ok {
		return "", fmt.Errorf("unsupported currency %q", code)
	}
	return c, nil
}

// Known reports whether c is a supported currency written in canonical
// lowercase form.
func (c Currency) Known() bool {
	_, ok := currencies[c]
	return ok
}

// Exponent returns the number of decimal digits of c's minor unit: 2 for usd
// (cents), 0 for jpy, 3 for kwd. Unknown currencies report 2.
func (c Currency) Exponent() int32 {
	if info, ok := currencies[c]; ok {
		return info.exponent
	}
	return 2
}

// String returns the code in upper case, as written on invoices ("USD").
func (c Currency) String() string { return strings.ToUpper(string(c)) }

// Round converts an exact amount in minor units of cur (for example 123.5
// cents) to a whole number of minor units. The rule is: round half away from
// zero to the currency's minor unit, so 1.5 → 2, 1.49 → 1, -1.5 → -2. Because
// amounts are already expressed in minor units, the rule is the same for
// every currency: a yen amount of 1200.5 becomes 1201 yen, a cent amount of
// 1200.5 becomes 1201 cents. It matches the line-level rounding Stripe
// documents for unit_amount_decimal prices. Amounts beyond the int64 range
// are not supported.
func Round(amount decimal.Decimal, cur Currency) int64 {
	return amount.Round(0).IntPart()
}

// MinorUnits converts an amount in major units of cur ("12.345" dollars) to
// whole minor units (1235 cents) with the rounding rule of [Round].
func MinorUnits(major decimal.Decimal, cur Currency) int64 {
	return Round(major.Shift(cur.Exponent()), cur)
}

// Money is an amount in whole minor units of a currency: Money{1234, "usd"}
// is $12.34 and Money{1200, "jpy"} is ¥1,200.
type Money struct {
	Amount   int64    `json:"amount"`
	Currency Currency `json:"currency"`
}

// NewMoney returns amount minor units of cur.
func NewMoney(amount int64, cur Currency) Money { return Money{Amount: amount, Currency: cur} }

// Add returns m + o; it fails if the currencies differ.
func (m Money) Add(o Money) (Money, error) {
	if m.Currency != o.Currency {
		return Money{}, fmt.Errorf("add %s to %s: currency mismatch", o.Currency, m.Currency)
	}
	return Money{Amount: m.Amount + o.Amount, Currency: m.Currency}, nil
}

// Sub returns m - o; it fails if the currencies differ.
func (m Money) Sub(o Money) (Money, error) {
	return m.Add(Money{Amount: -o.Amount, Currency: o.Currency})
}

// IsZero reports whether m's amount is zero.
func (m Money) IsZero() bool { return m.Amount == 0 }

// Major returns the amount in major units as an exact decimal (12.34 for
// Money{1234, "usd"}).
func (m Money) Major() decimal.Decimal {
	return decimal.New(m.Amount, -m.Currency.Exponent())
}

// String formats m for people: "$12.34", "¥1,200", "-€0.50", "CHF 1,234.50",
// "KWD 1.234". Thousands are separated by commas; currencies without a
// well-known unambiguous symbol are written with their upper-case code.
func (m Money) String() string {
	exp := m.Currency.Exponent()
	amt := m.Amount
	neg := amt < 0
	var abs uint64
	if neg {
		abs = uint64(-(amt + 1)) + 1 // safe for math.MinInt64
	} else {
		abs = uint64(amt)
	}
	digits := fmt.Sprintf("%0*d", int(exp)+1, abs)
	intPart, frac := digits[:len(digits)-int(exp)], digits[len(digits)-int(exp):]

	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	if info, ok := currencies[m.Currency]; ok && info.symbol != "" {
		b.WriteString(info.symbol)
	} else {
		b.WriteString(m.Currency.String())
		b.WriteByte(' ')
	}
	for i, r := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if exp > 0 {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}
