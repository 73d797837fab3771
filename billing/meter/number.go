package meter

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
)

// num is an exact number: an int64 when the value is an integer that fits
// one (compared without allocating), otherwise a decimal.
type num struct {
	i     int64
	d     decimal.Decimal
	small bool
}

// one is the contribution of an event to a count.
var one = decimal.NewFromInt(1)

// numberOf converts a property or condition value to an exact number. It
// accepts json.Number, Go integer and float types (not NaN or infinities)
// and decimal.Decimal; strings, bools, objects and arrays are not numbers.
// A json.Number must be valid JSON number syntax within the decoder's range
// bounds, so that evaluating a hostile value stays cheap.
func numberOf(v any) (num, bool) {
	switch x := v.(type) {
	case json.Number:
		return parseNum(string(x))
	case int:
		return num{i: int64(x), small: true}, true
	case int64:
		return num{i: x, small: true}, true
	case int32:
		return num{i: int64(x), small: true}, true
	case int16:
		return num{i: int64(x), small: true}, true
	case int8:
		return num{i: int64(x), small: true}, true
	case uint:
		return fromUint(uint64(x)), true
	case uint64:
		return fromUint(x), true
	case uint32:
		return num{i: int64(x), small: true}, true
	case uint16:
		return num{i: int64(x), small: true}, true
	case uint8:
		return num{i: int64(x), small: true}, true
	case float64:
		return fromFloat(x, 64)
	case float32:
		return fromFloat(float64(x), 32)
	case decimal.Decimal:
		if e := x.Exponent(); e > maxExponent*2 || e < -maxExponent*2 {
			return num{}, false
		}
		return num{d: x}, true
	}
	return num{}, false
}

func fromUint(u uint64) num {
	if u <= math.MaxInt64 {
		return num{i: int64(u), small: true}
	}
	return num{d: decimal.NewFromUint64(u)}
}

func fromFloat(f float64, bits int) (num, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return num{}, false
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return num{i: int64(f), small: true}, true
	}
	if bits == 32 {
		return num{d: decimal.NewFromFloat32(float32(f))}, true
	}
	return num{d: decimal.NewFromFloat(f)}, true
}

// parseNum parses a JSON number literal exactly.
func parseNum(s string) (num, bool) {
	if len(s) == 0 || len(s) > maxNumberLen {
		return num{}, false
	}
	// Integers of up to 18 digits fit an int64.
	digits := s
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) > 0 && len(digits) <= 18 && allDigits(digits) && (digits[0] != '0' || len(digits) == 1) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err == nil {
			return num{i: n, small: true}, true
		}
	}
	sc := scanner{data: []byte(s)}
	if sc.skipNumber() != nil || sc.pos != len(s) || !numberLiteralInRange(sc.data) {
		return num{}, false
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return num{}, false
	}
	return num{d: d}, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// dec returns n as a decimal.
func (n num) dec() decimal.Decimal {
	if n.small {
		return decimal.NewFromInt(n.i)
	}
	return n.d
}

// cmp compares two numbers exactly: -1, 0 or +1.
func (n num) cmp(o num) int {
	if n.small && o.small {
		switch {
		case n.i < o.i:
			return -1
		case n.i > o.i:
			return 1
		}
		return 0
	}
	return n.dec().Cmp(o.dec())
}

// key returns a canonical text for the number's value: the same for 1,
// 1.0 and 1e0, different for different values. It is an integer coefficient
// without trailing zeros followed by "e" and the exponent when that is not 0.
func (n num) key() string {
	var coef string
	var exp int64
	if n.small {
		v := n.i
		for v != 0 && v%10 == 0 {
			v /= 10
			exp++
		}
		coef = strconv.FormatInt(v, 10)
	} else {
		d := n.d.Normalize()
		coef = d.Coefficient().String()
		exp = int64(d.Exponent())
	}
	if coef == "0" {
		return "0"
	}
	if exp == 0 {
		return coef
	}
	var b strings.Builder
	b.Grow(len(coef) + 6)
	b.WriteString(coef)
	b.WriteByte('e')
	b.WriteString(strconv.FormatInt(exp, 10))
	return b.String()
}
