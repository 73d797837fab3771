package meter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// Logic combines the conditions and groups of a Filter.
type Logic string

// Logics of a filter group.
const (
	LogicAnd Logic = "and" // every condition and group matches
	LogicOr  Logic = "or"  // at least one condition or group matches
)

// Operator compares an event property with a condition's value.
type Operator string

// Operators of a condition. A condition never matches an event that lacks
// the property or has it as JSON null, whatever the operator, not_equals
// and not_contains included.
const (
	// OpEquals matches a property equal to the value: strings and bools
	// compare exactly, numbers numerically (1 equals 1.0); values of
	// different types are never equal (the string "1" does not equal 1).
	OpEquals Operator = "equals"
	// OpNotEquals matches a property that is present and not equal to the
	// value in the sense of OpEquals.
	OpNotEquals Operator = "not_equals"
	// OpGreater matches a numeric property greater than the value.
	OpGreater Operator = "gt"
	// OpGreaterOrEqual matches a numeric property greater than or equal to
	// the value.
	OpGreaterOrEqual Operator = "gte"
	// OpLess matches a numeric property less than the value.
	OpLess Operator = "lt"
	// OpLessOrEqual matches a numeric property less than or equal to the
	// value.
	OpLessOrEqual Operator = "lte"
	// OpContains matches a string property that contains the value as a
	// substring (case-sensitive).
	OpContains Operator = "contains"
	// OpNotContains matches a string property that does not contain the
	// value; a property that is not a string does not match.
	OpNotContains Operator = "not_contains"
)

// Limits on the size of a filter.
const (
	MaxFilterDepth      = 5  // nesting of groups, the top group being level 1
	MaxFilterConditions = 50 // conditions in a whole filter
)

// Filter is a group of conditions and nested groups joined by Logic. An
// empty Logic means "and". Comparisons between a property and a value are
// exact: numbers compare as decimals, never as floating point, and a
// string property never satisfies a numeric operator (so "10" is not > 5).
type Filter struct {
	Logic      Logic       `json:"logic"`
	Conditions []Condition `json:"conditions,omitempty"`
	Groups     []Filter    `json:"groups,omitempty"`
}

// Condition compares the event property at Property, a dotted path into
// nested objects such as "response.status", with Value using Operator.
// Value is a string, a bool or a number: json.Number when decoded from JSON
// (Condition's UnmarshalJSON keeps numbers exact), or any Go integer, float
// or decimal.Decimal when built in Go.
type Condition struct {
	Property string   `json:"property"`
	Operator Operator `json:"operator"`
	Value    any      `json:"value"`
}

// UnmarshalJSON decodes a condition keeping a numeric value as json.Number,
// so that 0.1 or 12345678901234567890 stay exact.
func (c *Condition) UnmarshalJSON(data []byte) error {
	var raw struct {
		Property string          `json:"property"`
		Operator Operator        `json:"operator"`
		Value    json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	var v any
	if len(raw.Value) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw.Value))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("decode condition value: %w", err)
		}
	}
	*c = Condition{Property: raw.Property, Operator: raw.Operator, Value: v}
	return nil
}

// validate checks f, whose field path is path, at nesting level depth;
// conditions counts the conditions seen so far in the whole filter.
func (f *Filter) validate(path string, depth int, conditions *int) error {
	if depth > MaxFilterDepth {
		return &FieldError{Field: path, Message: fmt.Sprintf("filter groups nest deeper than %d levels", MaxFilterDepth)}
	}
	switch f.Logic {
	case "", LogicAnd, LogicOr:
	default:
		return &FieldError{Field: path + ".logic", Message: fmt.Sprintf("must be %q or %q, not %q", LogicAnd, LogicOr, f.Logic)}
	}
	if len(f.Conditions) == 0 && len(f.Groups) == 0 {
		return &FieldError{Field: path + ".conditions", Message: "a filter group needs at least one condition or group"}
	}
	for i := range f.Conditions {
		cpath := fmt.Sprintf("%s.conditions[%d]", path, i)
		*conditions++
		if *conditions > MaxFilterConditions {
			return &FieldError{Field: cpath, Message: fmt.Sprintf("a filter may have at most %d conditions", MaxFilterConditions)}
		}
		if err := f.Conditions[i].validate(cpath); err != nil {
			return err
		}
	}
	for i := range f.Groups {
		if err := f.Groups[i].validate(fmt.Sprintf("%s.groups[%d]", path, i), depth+1, conditions); err != nil {
			return err
		}
	}
	return nil
}

func (c *Condition) validate(path string) error {
	if err := validatePropertyPath(c.Property); err != nil {
		return &FieldError{Field: path + ".property", Message: err.Error()}
	}
	vpath := path + ".value"
	switch c.Operator {
	case OpEquals, OpNotEquals:
		switch c.Value.(type) {
		case string, bool:
			return nil
		case nil:
			return &FieldError{Field: vpath, Message: "is required"}
		}
		if !isConditionNumber(c.Value) {
			return &FieldError{Field: vpath, Message: fmt.Sprintf("%s needs a string, number or bool value", c.Operator)}
		}
	case OpGreater, OpGreaterOrEqual, OpLess, OpLessOrEqual:
		if !isConditionNumber(c.Value) {
			return &FieldError{Field: vpath, Message: fmt.Sprintf("%s needs a numeric value, not %s", c.Operator, describe(c.Value))}
		}
	case OpContains, OpNotContains:
		if _, ok := c.Value.(string); !ok {
			return &FieldError{Field: vpath, Message: fmt.Sprintf("%s needs a string value, not %s", c.Operator, describe(c.Value))}
		}
	case "":
		return &FieldError{Field: path + ".operator", Message: "is required"}
	default:
		return &FieldError{Field: path + ".operator", Message: fmt.Sprintf(
			"unknown operator %q; want one of equals, not_equals, gt, gte, lt, lte, contains, not_contains", c.Operator)}
	}
	return nil
}

// isConditionNumber reports whether v is a number a condition can hold.
func isConditionNumber(v any) bool {
	_, ok := numberOf(v)
	return ok
}

// describe names the JSON type of v for error messages.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string %q", x)
	case bool:
		return "a bool"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "a non-finite number"
		}
	case json.Number:
		return "a number out of range"
	}
	return fmt.Sprintf("a %T", v)
}

// validatePropertyPath checks a dotted property path: 1 to 255 characters,
// no empty segment.
func validatePropertyPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("is required")
	case len(p) > 255:
		return fmt.Errorf("is longer than 255 characters")
	case strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, ".."):
		return fmt.Errorf("%q has an empty segment; use dots only between keys, as in response.status", p)
	case !cleanText(p):
		return fmt.Errorf("must be valid UTF-8 without NUL characters")
	}
	return nil
}

// lookup finds the value at a dotted path in props. A missing key, a
// non-object on the way or a JSON null all count as missing.
func lookup(props map[string]any, path string) (any, bool) {
	m := props
	for {
		i := strings.IndexByte(path, '.')
		if i < 0 {
			v := m[path]
			return v, v != nil
		}
		next, ok := m[path[:i]].(map[string]any)
		if !ok {
			return nil, false
		}
		m = next
		path = path[i+1:]
	}
}

// matches evaluates the group against an event's properties. An empty
// group matches under "and" and does not under "or" (Validate refuses
// empty groups).
func (f *Filter) matches(props map[string]any) bool {
	or := f.Logic == LogicOr
	for i := range f.Conditions {
		if f.Conditions[i].matches(props) == or {
			return or
		}
	}
	for i := range f.Groups {
		if f.Groups[i].matches(props) == or {
			return or
		}
	}
	return !or
}

// matches evaluates one condition; see the Operator constants.
func (c *Condition) matches(props map[string]any) bool {
	v, ok := lookup(props, c.Property)
	if !ok {
		return false
	}
	switch c.Operator {
	case OpEquals:
		return equalValues(v, c.Value)
	case OpNotEquals:
		return !equalValues(v, c.Value)
	case OpGreater, OpGreaterOrEqual, OpLess, OpLessOrEqual:
		pn, ok := numberOf(v)
		if !ok {
			return false
		}
		cn, ok := numberOf(c.Value)
		if !ok {
			return false
		}
		r := pn.cmp(cn)
		switch c.Operator {
		case OpGreater:
			return r > 0
		case OpGreaterOrEqual:
			return r >= 0
		case OpLess:
			return r < 0
		default:
			return r <= 0
		}
	case OpContains, OpNotContains:
		s, ok := v.(string)
		if !ok {
			return false
		}
		want, ok := c.Value.(string)
		if !ok {
			return false
		}
		return strings.Contains(s, want) == (c.Operator == OpContains)
	}
	return false
}

// equalValues compares a present property with a condition value.
func equalValues(prop, want any) bool {
	switch w := want.(type) {
	case string:
		s, ok := prop.(string)
		return ok && s == w
	case bool:
		b, ok := prop.(bool)
		return ok && b == w
	}
	// Otherwise both must be numbers.
	wn, ok := numberOf(want)
	if !ok {
		return false
	}
	pn, ok := numberOf(prop)
	return ok && pn.cmp(wn) == 0
}
