package meter

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

// randomLiteral returns a JSON number literal with random sign, leading
// and trailing zeros, fraction and exponent, often equal in value to others.
func randomLiteral(rng *rand.Rand) string {
	var b strings.Builder
	if rng.IntN(3) == 0 {
		b.WriteByte('-')
	}
	intDigits := rng.IntN(22)
	if intDigits == 0 || rng.IntN(4) == 0 {
		b.WriteByte('0')
	} else {
		b.WriteByte(byte('1' + rng.IntN(9)))
		for i := 1; i < intDigits; i++ {
			b.WriteByte([]byte("0009")[rng.IntN(4)])
		}
	}
	if rng.IntN(2) == 0 {
		b.WriteByte('.')
		for i, n := 0, 1+rng.IntN(20); i < n; i++ {
			b.WriteByte([]byte("0005")[rng.IntN(4)])
		}
	}
	if rng.IntN(3) == 0 {
		b.WriteByte("eE"[rng.IntN(2)])
		if rng.IntN(2) == 0 {
			b.WriteByte("+-"[rng.IntN(2)])
		}
		fmt.Fprintf(&b, "%d", rng.IntN(25))
	}
	return b.String()
}

func TestNumberCompareMatchesDecimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	values := []any{int64(0), int64(-1), int64(1), int64(100), int64(-999999999999999999), int(1 << 40), 0.5, -2.25, uint64(1<<64 - 1)}
	for i := 0; i < 3000; i++ {
		values = append(values, json.Number(randomLiteral(rng)))
	}
	for i := 0; i < 20000; i++ {
		a, b := values[rng.IntN(len(values))], values[rng.IntN(len(values))]
		na, ok1 := numberOf(a)
		nb, ok2 := numberOf(b)
		if !ok1 || !ok2 {
			t.Fatalf("numberOf(%v) or numberOf(%v) failed", a, b)
		}
		want := na.dec().Cmp(nb.dec())
		if got := na.cmp(nb); got != want {
			t.Fatalf("cmp(%v, %v) = %d, want %d (as decimals %v and %v)", a, b, got, want, na.dec(), nb.dec())
		}
		if want == 0 && na.key() != nb.key() {
			t.Fatalf("key(%v) = %q, key(%v) = %q; want equal keys for equal values", a, na.key(), b, nb.key())
		}
		if want != 0 && na.key() == nb.key() {
			t.Fatalf("key(%v) = key(%v) = %q for different values", a, b, na.key())
		}
	}
}

func TestNumberOf(t *testing.T) {
	tests := []struct {
		in     any
		want   string
		wantOK bool
	}{
		{json.Number("12"), "12", true},
		{json.Number("-0.50"), "-0.5", true},
		{json.Number("1.5e3"), "1500", true},
		{json.Number("123456789012345678901234567890"), "123456789012345678901234567890", true},
		{json.Number("1e999"), "1" + strings.Repeat("0", 999), true},
		{json.Number("1e1000"), "", false},
		{json.Number(strings.Repeat("1", 101)), "", false},
		{json.Number("01"), "", false},
		{json.Number("1."), "", false},
		{json.Number("0x10"), "", false},
		{json.Number(""), "", false},
		{json.Number("NaN"), "", false},
		{uint8(7), "7", true},
		{float32(0.1), "0.1", true},
		{decimal.RequireFromString("2.50"), "2.5", true},
		{"12", "", false},
		{true, "", false},
		{nil, "", false},
	}
	for _, tt := range tests {
		n, ok := numberOf(tt.in)
		if ok != tt.wantOK || (ok && !n.dec().Equal(decimal.RequireFromString(tt.want))) {
			t.Errorf("numberOf(%#v) = %v, %v; want %s, %v", tt.in, n.dec(), ok, tt.want, tt.wantOK)
		}
	}
}
