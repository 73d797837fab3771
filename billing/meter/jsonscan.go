package meter

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds a small JSON reader made for batch decoding. It works in
// two passes per element: skipValue checks the syntax of one element and
// finds its end without building anything (a syntax error sinks the whole
// body, since the next element can no longer be found), and the typed
// readers then decode the element, where a problem only rejects that element.
// Working on byte spans lets RawProperties point at the received bytes and
// lets known keys be matched without allocating.

// Bounds on what the decoder accepts inside properties. Numbers are bounded
// so that exact decimal arithmetic on them stays cheap and so that every
// accepted number also fits a Postgres numeric (and so a JSONB column).
const (
	maxPropertyDepth = 32  // nesting of objects and arrays inside properties
	maxNumberLen     = 100 // characters in one number literal
	maxExponent      = 999 // magnitude of a number's exponent part
)

// syntaxError is a JSON syntax error at a byte offset of the body.
type syntaxError struct {
	msg    string
	offset int
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("%s at offset %d", e.msg, e.offset)
}

// scanner reads JSON from data starting at pos.
type scanner struct {
	data  []byte
	pos   int
	stack []byte // open containers while skipping, reused across elements
}

func (s *scanner) errorf(format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, args...), offset: s.pos}
}

func (s *scanner) skipWS() {
	data, i := s.data, s.pos
	for i < len(data) && data[i] <= ' ' && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	s.pos = i
}

// peek returns the next non-space byte, or 0 at the end of the data.
func (s *scanner) peek() byte {
	s.skipWS()
	if s.pos >= len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

// expect consumes the byte c after optional white space.
func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		if s.pos >= len(s.data) {
			return s.errorf("unexpected end of JSON, want %q", c)
		}
		return s.errorf("invalid character %q, want %q", s.data[s.pos], c)
	}
	s.pos++
	return nil
}

// skipValue checks the syntax of the value at pos and moves past it. It
// works without recursion, so deep nesting cannot exhaust the stack.
func (s *scanner) skipValue() error {
	s.stack = s.stack[:0]
	for {
		// A value is expected here.
		switch c := s.peek(); c {
		case '{':
			s.pos++
			if s.peek() == '}' {
				s.pos++
				break
			}
			s.stack = append(s.stack, '{')
			if err := s.skipKey(); err != nil {
				return err
			}
			continue
		case '[':
			s.pos++
			if s.peek() == ']' {
				s.pos++
				break
			}
			s.stack = append(s.stack, '[')
			continue
		case '"':
			if _, err := s.skipString(); err != nil {
				return err
			}
		case 't':
			if err := s.skipLiteral("true"); err != nil {
				return err
			}
		case 'f':
			if err := s.skipLiteral("false"); err != nil {
				return err
			}
		case 'n':
			if err := s.skipLiteral("null"); err != nil {
				return err
			}
		case 0:
			if s.pos >= len(s.data) {
				return s.errorf("unexpected end of JSON")
			}
			return s.errorf("invalid character %q looking for a value", c)
		default:
			if c != '-' && (c < '0' || c > '9') {
				return s.errorf("invalid character %q looking for a value", c)
			}
			if err := s.skipNumber(); err != nil {
				return err
			}
		}
		// A value ended: close containers until one wants another value.
		for {
			if len(s.stack) == 0 {
				return nil
			}
			top := s.stack[len(s.stack)-1]
			c := s.peek()
			if c == ',' {
				s.pos++
				if top == '{' {
					if err := s.skipKey(); err != nil {
						return err
					}
				}
				break
			}
			if (top == '{' && c == '}') || (top == '[' && c == ']') {
				s.pos++
				s.stack = s.stack[:len(s.stack)-1]
				continue
			}
			if s.pos >= len(s.data) {
				return s.errorf("unexpected end of JSON")
			}
			return s.errorf("invalid character %q after a value", c)
		}
	}
}

// skipKey checks an object key and the colon after it.
func (s *scanner) skipKey() error {
	if s.peek() != '"' {
		if s.pos >= len(s.data) {
			return s.errorf("unexpected end of JSON")
		}
		return s.errorf("invalid character %q looking for an object key", s.data[s.pos])
	}
	if _, err := s.skipString(); err != nil {
		return err
	}
	return s.expect(':')
}

// skipString checks the string starting at pos (on its opening quote),
// moves past it and reports whether it contains escapes.
func (s *scanner) skipString() (escaped bool, err error) {
	s.pos++ // opening quote
	for s.pos < len(s.data) {
		// Plain bytes are the common case: run past them in a tight loop.
		data, i := s.data, s.pos
		for i < len(data) && !stringSpecial[data[i]] {
			i++
		}
		s.pos = i
		if s.pos >= len(s.data) {
			break
		}
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return escaped, nil
		case c == '\\':
			escaped = true
			if s.pos+1 >= len(s.data) {
				s.pos++
				return escaped, s.errorf("unexpected end of JSON in string escape")
			}
			switch s.data[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				if s.pos+6 > len(s.data) {
					s.pos = len(s.data)
					return escaped, s.errorf("unexpected end of JSON in \\u escape")
				}
				for _, h := range s.data[s.pos+2 : s.pos+6] {
					if unhex(h) < 0 {
						return escaped, s.errorf("invalid character %q in \\u escape", h)
					}
				}
				s.pos += 6
			default:
				return escaped, s.errorf("invalid escape character %q in string", s.data[s.pos+1])
			}
		case c < 0x20:
			return escaped, s.errorf("invalid control character %q in string", c)
		default:
			s.pos++
		}
	}
	return escaped, s.errorf("unexpected end of JSON in string")
}

// stringSpecial marks the bytes that end the plain run inside a string: the
// closing quote, a backslash and control characters.
var stringSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'] = true
	t['\\'] = true
	return t
}()

func (s *scanner) skipLiteral(lit string) error {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return s.errorf("invalid literal, want %s", lit)
	}
	s.pos += len(lit)
	return nil
}

// skipNumber checks a number against the JSON grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and moves past it.
func (s *scanner) skipNumber() error {
	d := s.data
	i := s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	default:
		s.pos = i
		return s.errorf("invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !isDigit(d[i]) {
			s.pos = i
			return s.errorf("invalid number: digit wanted after decimal point")
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			s.pos = i
			return s.errorf("invalid number: digit wanted in exponent")
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	s.pos = i
	return nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func unhex(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// The readers below run on spans that skipValue already accepted, so they
// meet only well-formed JSON; they still check bounds rather than trust it.

// readString reads the string at pos and returns its content bytes (without
// quotes, still escaped) and whether it has escapes.
func (s *scanner) readString() (raw []byte, escaped bool) {
	start := s.pos + 1
	escaped, _ = s.skipString()
	end := s.pos - 1
	if end < start {
		end = start
	}
	return s.data[start:end], escaped
}

// textProblem says why a JSON string cannot be stored as text.
type textProblem string

const (
	textOK          textProblem = ""
	textBadUTF8     textProblem = "is not valid UTF-8"
	textNUL         textProblem = "contains a NUL character (\\u0000), which cannot be stored"
	textBadSurrgate textProblem = "contains an unpaired UTF-16 surrogate escape, which cannot be stored"
)

// decodeString turns string content into Go text, rejecting what Postgres
// text and JSONB columns refuse: invalid UTF-8, NUL and lone surrogates.
func decodeString(raw []byte, escaped bool) (string, textProblem) {
	if !escaped {
		for _, c := range raw {
			if c >= utf8.RuneSelf {
				if !utf8.Valid(raw) {
					return "", textBadUTF8
				}
				break
			}
		}
		return string(raw), textOK
	}
	if !utf8.Valid(raw) {
		return "", textBadUTF8
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(raw) {
			return "", textBadUTF8
		}
		switch raw[i+1] {
		case '"', '\\', '/':
			out = append(out, raw[i+1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(raw, i+2)
			if !ok {
				return "", textBadUTF8
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2, ok = hex4(raw, i+2)
				}
				dec := utf16.DecodeRune(r, r2)
				if !ok || dec == utf8.RuneError {
					return "", textBadSurrgate
				}
				r = dec
				i += 6
			}
			if r == 0 {
				return "", textNUL
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return "", textBadUTF8
		}
		i += 2
	}
	return string(out), textOK
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		h := unhex(c)
		if h < 0 {
			return 0, false
		}
		r = r<<4 | h
	}
	return r, true
}

// interner shares the strings and boxed values that repeat within a batch
// (property keys, event names, customer ids, enum-like values such as
// "GET" or 200), saving an allocation for each repeat. It is a small
// direct-mapped cache: a lookup costs a hash of three bytes and one
// comparison, and a miss just replaces the slot, so unique values cost
// almost nothing extra. Sharing is safe because strings and boxed values
// are immutable. Only short, unescaped strings are cached.
type interner struct {
	strs [internSlots]string
	vals [internSlots]boxed // boxed string values
	nums [internSlots]boxed // boxed json.Number values
}

type boxed struct {
	s string
	v any
}

const (
	internSlots  = 256
	maxInternLen = 32 // bytes of a cacheable string
)

// internSlot picks a cache slot from a string's length and three of its bytes.
func internSlot(b []byte) int {
	n := len(b)
	if n == 0 {
		return 0
	}
	return (n*31 ^ int(b[0])*17 ^ int(b[n-1])*5 ^ int(b[n/2])*3) & (internSlots - 1)
}

// text is decodeString, sharing repeated results.
func (in *interner) text(raw []byte, escaped bool) (string, textProblem) {
	if escaped || len(raw) > maxInternLen {
		return decodeString(raw, escaped)
	}
	slot := &in.strs[internSlot(raw)]
	if *slot == string(raw) {
		return *slot, textOK
	}
	s, prob := decodeString(raw, false)
	if prob == textOK {
		*slot = s
	}
	return s, prob
}

// boxedText is text returned as an interface value, sharing the boxing of
// repeated values too.
func (in *interner) boxedText(raw []byte, escaped bool) (any, textProblem) {
	if escaped || len(raw) > maxInternLen {
		s, prob := decodeString(raw, escaped)
		return s, prob
	}
	slot := &in.vals[internSlot(raw)]
	if slot.v != nil && slot.s == string(raw) {
		return slot.v, textOK
	}
	s, prob := decodeString(raw, false)
	if prob != textOK {
		return nil, prob
	}
	var v any = s
	*slot = boxed{s: s, v: v}
	return v, textOK
}

// boxedNumber returns a number literal, already checked for syntax, as a
// boxed json.Number, or false when it is out of range.
func (in *interner) boxedNumber(lit []byte) (any, bool) {
	var slot *boxed
	if len(lit) <= maxInternLen {
		slot = &in.nums[internSlot(lit)]
		if slot.v != nil && slot.s == string(lit) {
			return slot.v, true
		}
	}
	if !numberLiteralInRange(lit) {
		return nil, false
	}
	n := json.Number(lit)
	var v any = n
	if slot != nil {
		*slot = boxed{s: string(n), v: v}
	}
	return v, true
}

// pathElem is one step of a property path, kept only to name a field in a
// rejection: an object key or an array index.
type pathElem struct {
	key   string
	index int // used when key is ""
	isIdx bool
}

// valueReader decodes property values generically, the way encoding/json
// with UseNumber would, while recording where it is for error messages.
type valueReader struct {
	s    *scanner
	in   *interner
	path []pathElem // reused across elements
	root string     // field name of the properties object ("properties" or "data")
}

// fieldErr is a problem found at the reader's current path.
type fieldErr struct {
	field  string
	reason string
}

func (r *valueReader) fail(reason string) *fieldErr {
	b := make([]byte, 0, 32)
	b = append(b, r.root...)
	for _, p := range r.path {
		if p.isIdx {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(p.index), 10)
			b = append(b, ']')
		} else {
			b = append(b, '.')
			b = append(b, p.key...)
		}
	}
	return &fieldErr{field: string(b), reason: reason}
}

// object reads the object at pos into a map.
func (r *valueReader) object() (map[string]any, *fieldErr) {
	s := r.s
	s.pos++ // {
	m := make(map[string]any)
	if s.peek() == '}' {
		s.pos++
		return m, nil
	}
	for {
		s.skipWS()
		raw, esc := s.readString()
		key, prob := r.in.text(raw, esc)
		if prob != textOK {
			return nil, r.fail("has a key that " + string(prob))
		}
		if err := s.expect(':'); err != nil {
			return nil, r.fail("is not valid JSON")
		}
		r.path = append(r.path, pathElem{key: key})
		v, ferr := r.value()
		r.path = r.path[:len(r.path)-1]
		if ferr != nil {
			return nil, ferr
		}
		m[key] = v
		if s.peek() == ',' {
			s.pos++
			continue
		}
		s.pos++ // }
		return m, nil
	}
}

// value reads any JSON value at pos.
func (r *valueReader) value() (any, *fieldErr) {
	s := r.s
	switch c := s.peek(); c {
	case '{', '[':
		if len(r.path) >= maxPropertyDepth {
			return nil, r.fail(fmt.Sprintf("nests deeper than %d levels", maxPropertyDepth))
		}
		if c == '{' {
			return r.object()
		}
		return r.array()
	case '"':
		raw, esc := s.readString()
		v, prob := r.in.boxedText(raw, esc)
		if prob != textOK {
			return nil, r.fail(string(prob))
		}
		return v, nil
	case 't':
		s.pos += 4
		return true, nil
	case 'f':
		s.pos += 5
		return false, nil
	case 'n':
		s.pos += 4
		return nil, nil
	default:
		start := s.pos
		_ = s.skipNumber()
		v, ok := r.in.boxedNumber(s.data[start:s.pos])
		if !ok {
			return nil, r.fail(fmt.Sprintf("is a number out of range (at most %d characters and an exponent within ±%d)", maxNumberLen, maxExponent))
		}
		return v, nil
	}
}

func (r *valueReader) array() ([]any, *fieldErr) {
	s := r.s
	s.pos++ // [
	out := []any{}
	if s.peek() == ']' {
		s.pos++
		return out, nil
	}
	for i := 0; ; i++ {
		r.path = append(r.path, pathElem{index: i, isIdx: true})
		v, ferr := r.value()
		r.path = r.path[:len(r.path)-1]
		if ferr != nil {
			return nil, ferr
		}
		out = append(out, v)
		if s.peek() == ',' {
			s.pos++
			continue
		}
		s.pos++ // ]
		return out, nil
	}
}

// numberLiteralInRange reports whether a syntactically valid JSON number is
// short enough and has an exponent part of at most maxExponent.
func numberLiteralInRange(lit []byte) bool {
	if len(lit) > maxNumberLen {
		return false
	}
	for i, c := range lit {
		if c == 'e' || c == 'E' {
			exp := 0
			for _, d := range lit[i+1:] {
				if isDigit(d) {
					exp = exp*10 + int(d-'0')
					if exp > maxExponent {
						return false
					}
				}
			}
			return true
		}
	}
	return true
}
