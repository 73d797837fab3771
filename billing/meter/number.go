package meter

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
)

// num is an exact number in one of three forms: an int64 (an integer
// that fits one), a JSON number literal, or a decimal. Comparisons between
// the first two forms need no allocation; only the decimal form, or a
// literal whose integer part does not fit an int64 meeting an int64,
// falls back to decimal arithmetic.
type num struct {
	kind numKind
	i    int64
	lit  literal
	d    decimal.Decimal
}

type numKind uint8

const (
	numInt numKind = iota
	numLiteral
	numDecimal
)

// literal is a parsed JSON number literal, read as 0.D × 10^point where D
// is its significant digits (no leading or trailing zeros).
type literal struct {
	s           string // the literal itself
	neg         bool
	a, b        string // the digits before and after the decimal point
	lead, trail int    // zeros that lead and trail the digits of a+b
	exp         int    // the exponent part
}

// parseLiteral reads a literal that is known to be valid JSON number
// syntax within the decoder's range bounds.
func parseLiteral(s string) literal {
	l := literal{s: s}
	rest := s
	if rest[0] == '-' {
		l.neg = true
		rest = rest[1:]
	}
	end := len(rest)
	for i := 0; i < len(rest); i++ {
		if rest[i] == '.' || rest[i] == 'e' || rest[i] == 'E' {
			end = i
			break
		}
	}
	l.a, rest = rest[:end], rest[end:]
	if len(rest) > 0 && rest[0] == '.' {
		rest = rest[1:]
		end = len(rest)
		for i := 0; i < len(rest); i++ {
			if rest[i] == 'e' || rest[i] == 'E' {
				end = i
				break
			}
		}
		l.b, rest = rest[:end], rest[end:]
	}
	if len(rest) > 0 {
		e := rest[1:]
		neg := false
		if e[0] == '+' || e[0] == '-' {
			neg = e[0] == '-'
			e = e[1:]
		}
		for i := 0; i < len(e); i++ {
			l.exp = l.exp*10 + int(e[i]-'0')
		}
		if neg {
			l.exp = -l.exp
		}
	}
	total := len(l.a) + len(l.b)
	for l.lead < total && l.at(l.lead) == '0' {
		l.lead++
	}
	for l.trail < total-l.lead && l.at(total-1-l.trail) == '0' {
		l.trail++
	}
	return l
}

// at returns digit k of a+b.
func (l *literal) at(k int) byte {
	if k < len(l.a) {
		return l.a[k]
	}
	return l.b[k-len(l.a)]
}

// digits is the number of significant digits; 0 means the value is zero.
func (l *literal) digits() int { return len(l.a) + len(l.b) - l.lead - l.trail }

// digit returns significant digit i.
func (l *literal) digit(i int) byte { return l.at(l.lead + i) }

// point is the position of the decimal point relative to the significant
// digits: the value is 0.D × 10^point.
func (l *literal) point() int { return len(l.a) - l.lead + l.exp }

func (l *literal) sign() int {
	switch {
	case l.digits() == 0:
		return 0
	case l.neg:
		return -1
	}
	return 1
}

// cmpLiterals compares two literals exactly.
func cmpLiterals(x, y *literal) int {
	sx, sy := x.sign(), y.sign()
	if sx != sy {
		return cmpInt(sx, sy)
	}
	if sx == 0 {
		return 0
	}
	// Same sign: compare magnitudes, then flip for negatives.
	mag := 0
	if px, py := x.point(), y.point(); px != py {
		mag = cmpInt(px, py)
	} else {
		nx, ny := x.digits(), y.digits()
		for i := 0; i < nx || i < ny; i++ {
			dx, dy := byte('0'-1), byte('0'-1) // a digit past the end is smaller than any
			if i < nx {
				dx = x.digit(i)
			}
			if i < ny {
				dy = y.digit(i)
			}
			if dx != dy {
				mag = cmpInt(int(dx), int(dy))
				break
			}
		}
	}
	return sx * mag
}

// cmpIntLiteral compares v with the literal x exactly, and reports false
// when x's integer part is too large to reason about in an int64.
func cmpIntLiteral(v int64, x *literal) (int, bool) {
	p, n := x.point(), x.digits()
	if p > 18 {
		return 0, false
	}
	// t is x truncated toward zero; frac reports a nonzero fraction.
	var t int64
	for i := 0; i < p; i++ {
		t *= 10
		if i < n {
			t += int64(x.digit(i) - '0')
		}
	}
	frac := n > p && n > 0
	if x.neg {
		t = -t
	}
	// |x - t| < 1 and both v and t are integers, so t alone decides unless equal.
	if v != t {
		return cmpInt64(v, t), true
	}
	if !frac {
		return 0, true
	}
	if x.neg {
		return 1, true // v = t > x
	}
	return -1, true
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
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
		return num{i: int64(x)}, true
	case int64:
		return num{i: x}, true
	case int32:
		return num{i: int64(x)}, true
	case int16:
		return num{i: int64(x)}, true
	case int8:
		return num{i: int64(x)}, true
	case uint:
		return fromUint(uint64(x)), true
	case uint64:
		return fromUint(x), true
	case uint32:
		return num{i: int64(x)}, true
	case uint16:
		return num{i: int64(x)}, true
	case uint8:
		return num{i: int64(x)}, true
	case float64:
		return fromFloat(x, 64)
	case float32:
		return fromFloat(float64(x), 32)
	case decimal.Decimal:
		if e := x.Exponent(); e > maxExponent*2 || e < -maxExponent*2 {
			return num{}, false
		}
		return num{kind: numDecimal, d: x}, true
	}
	return num{}, false
}

func fromUint(u uint64) num {
	if u <= math.MaxInt64 {
		return num{i: int64(u)}
	}
	return num{kind: numDecimal, d: decimal.NewFromUint64(u)}
}

func fromFloat(f float64, bits int) (num, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return num{}, false
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return num{i: int64(f)}, true
	}
	if bits == 32 {
		return num{kind: numDecimal, d: decimal.NewFromFloat32(float32(f))}, true
	}
	return num{kind: numDecimal, d: decimal.NewFromFloat(f)}, true
}

// parseNum parses a JSON number literal exactly, without allocating.
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
			return num{i: n}, true
		}
	}
	if !validNumber(s) || !numberLiteralInRange([]byte(s)) {
		return num{}, false
	}
	return num{kind: numLiteral, lit: parseLiteral(s)}, true
}

// validNumber reports whether s is exactly one JSON number.
func validNumber(s string) bool {
	sc := scanner{data: []byte(s)}
	return sc.skipNumber() == nil && sc.pos == len(s)
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
	switch n.kind {
	case numInt:
		return decimal.NewFromInt(n.i)
	case numLiteral:
		// parseNum checked the syntax and range, so this cannot fail.
		d, _ := decimal.NewFromString(n.lit.s)
		return d
	}
	return n.d
}

// cmp compares two numbers exactly: -1, 0 or +1.
func (n num) cmp(o num) int {
	switch {
	case n.kind == numInt && o.kind == numInt:
		return cmpInt64(n.i, o.i)
	case n.kind == numLiteral && o.kind == numLiteral:
		return cmpLiterals(&n.lit, &o.lit)
	case n.kind == numInt && o.kind == numLiteral:
		if c, ok := cmpIntLiteral(n.i, &o.lit); ok {
			return c
		}
	case n.kind == numLiteral && o.kind == numInt:
		if c, ok := cmpIntLiteral(o.i, &n.lit); ok {
			return -c
		}
	}
	return n.dec().Cmp(o.dec())
}

// key returns a canonical text for the number's value: the same for 1,
// 1.0 and 1e0, different for different values. It is an integer coefficient
// without trailing zeros followed by "e" and the exponent when that is not 0.
func (n num) key() string {
	var coef string
	var exp int64
	if n.kind == numInt {
		v := n.i
		for v != 0 && v%10 == 0 {
			v /= 10
			exp++
		}
		coef = strconv.FormatInt(v, 10)
	} else {
		d := n.dec().Normalize()
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
