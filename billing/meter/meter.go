package meter

import (
	"fmt"
	"strconv"

	"github.com/shopspring/decimal"
)

// Aggregation says how a meter turns matching events into a quantity.
type Aggregation string

// Aggregations a meter can use. All but AggregationCount read a property.
const (
	// AggregationCount counts matching events.
	AggregationCount Aggregation = "count"
	// AggregationSum adds up a numeric property.
	AggregationSum Aggregation = "sum"
	// AggregationMax takes the largest value of a numeric property.
	AggregationMax Aggregation = "max"
	// AggregationMin takes the smallest value of a numeric property.
	AggregationMin Aggregation = "min"
	// AggregationLast takes the numeric property of the latest event by
	// event time (not arrival time); among events with the same timestamp,
	// the one with the greatest id (byte-wise) wins, so the result does not
	// depend on the order events are seen in.
	AggregationLast Aggregation = "last"
	// AggregationUniqueCount counts distinct values of a property (strings,
	// numbers or bools); see Meter.UniqueKey.
	AggregationUniqueCount Aggregation = "unique_count"
)

// Valid reports whether a is one of the known aggregations.
func (a Aggregation) Valid() bool {
	switch a {
	case AggregationCount, AggregationSum, AggregationMax, AggregationMin, AggregationLast, AggregationUniqueCount:
		return true
	}
	return false
}

// Limits on meter fields.
const (
	MaxSlugLength = 64 // longest meter slug
	MaxUnitLength = 64 // longest unit label
)

// maxMeterText is the longest name or event name, in characters.
const maxMeterText = 255

// Meter defines a billable quantity: which events count (EventName and
// Filter), which property they contribute (Property, a dotted path into
// nested objects such as "response.status") and how contributions combine
// (Aggregation).
//
// An event counts only when its name equals EventName, Filter (if any)
// matches, and, for every aggregation but count, the property is present:
// an event lacking a property that the filter or the aggregation needs
// does not count. For sum, max, min and last the property must also be a
// number; an event whose property is a string such as "5" does not count.
type Meter struct {
	Slug        string      `json:"slug"`
	Name        string      `json:"name"`
	EventName   string      `json:"event_name"`
	Aggregation Aggregation `json:"aggregation"`
	Property    string      `json:"property,omitempty"`
	Unit        string      `json:"unit,omitempty"`
	Filter      *Filter     `json:"filter,omitempty"`
}

// FieldError is a validation error about one field of a definition. Field
// is the JSON path of the field, such as "slug" or
// "filter.groups[0].conditions[1].value".
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error returns "field: message".
func (e *FieldError) Error() string {
	return e.Field + ": " + e.Message
}

// Validate checks the meter definition and returns a *FieldError for the
// first problem found, or nil:
//
//   - slug: 1 to 64 characters of a-z, 0-9, '_' and '-';
//   - name and event_name: required, at most 255 characters;
//   - aggregation: one of the Aggregation constants;
//   - property: required for every aggregation but count, and not allowed
//     with count (use a filter to count only events having a property);
//   - unit: at most 64 characters;
//   - filter: groups with logic "and" or "or" (or empty, meaning "and"),
//     each with at least one condition or group, nested at most 5 levels
//     deep with at most 50 conditions in all; each condition has a property
//     path, a known operator and a value of the type the operator needs
//     (a number for gt, gte, lt and lte; a string for contains and
//     not_contains; a string, number or bool for equals and not_equals).
func (m Meter) Validate() error {
	if err := validateSlug(m.Slug); err != nil {
		return err
	}
	if err := validateText("name", m.Name, maxMeterText, true); err != nil {
		return err
	}
	if err := validateText("event_name", m.EventName, maxMeterText, true); err != nil {
		return err
	}
	if !m.Aggregation.Valid() {
		msg := "is required"
		if m.Aggregation != "" {
			msg = fmt.Sprintf("unknown aggregation %q", m.Aggregation)
		}
		return &FieldError{Field: "aggregation", Message: msg + "; want one of count, sum, max, min, last, unique_count"}
	}
	if m.Aggregation == AggregationCount {
		if m.Property != "" {
			return &FieldError{Field: "property", Message: "is not used by count; to count only events having it, use a filter"}
		}
	} else if err := validatePropertyPath(m.Property); err != nil {
		return &FieldError{Field: "property", Message: fmt.Sprintf("%s (%s needs a property)", err, m.Aggregation)}
	}
	if err := validateText("unit", m.Unit, MaxUnitLength, false); err != nil {
		return err
	}
	if m.Filter != nil {
		conditions := 0
		if err := m.Filter.validate("filter", 1, &conditions); err != nil {
			return err
		}
	}
	return nil
}

func validateSlug(slug string) error {
	if slug == "" || len(slug) > MaxSlugLength {
		return &FieldError{Field: "slug", Message: fmt.Sprintf("must be 1 to %d characters long", MaxSlugLength)}
	}
	for i := 0; i < len(slug); i++ {
		c := slug[i]
		if !(c >= 'a' && c <= 'z' || isDigit(c) || c == '_' || c == '-') {
			return &FieldError{Field: "slug", Message: fmt.Sprintf("may contain only a-z, 0-9, '_' and '-'; found %s", strconv.QuoteRune(rune(c)))}
		}
	}
	return nil
}

func validateText(field, s string, max int, required bool) error {
	if s == "" {
		if required {
			return &FieldError{Field: field, Message: "is required"}
		}
		return nil
	}
	if r := checkText(field, s, max); r != nil {
		return &FieldError{Field: field, Message: r.Reason}
	}
	return nil
}

// Matches reports whether ev has the meter's event name and satisfies its
// filter. It does not look at the aggregated property; Value and UniqueKey
// do.
func (m Meter) Matches(ev Event) bool {
	if ev.Name != m.EventName {
		return false
	}
	return m.Filter == nil || m.Filter.matches(ev.Properties)
}

// Value returns an event's contribution to the meter and whether it counts
// at all: 1 for count, the property's exact value for sum, max, min and
// last. It is false when the event does not match, when the property is
// missing, null or not a number, and always for unique_count, whose events
// contribute a key instead (see UniqueKey).
func (m Meter) Value(ev Event) (decimal.Decimal, bool) {
	if !m.Matches(ev) {
		return decimal.Decimal{}, false
	}
	switch m.Aggregation {
	case AggregationCount:
		return one, true
	case AggregationSum, AggregationMax, AggregationMin, AggregationLast:
		v, ok := lookup(ev.Properties, m.Property)
		if !ok {
			return decimal.Decimal{}, false
		}
		n, ok := numberOf(v)
		if !ok {
			return decimal.Decimal{}, false
		}
		return n.dec(), true
	}
	return decimal.Decimal{}, false
}

// UniqueKey returns the key under which a matching event's property counts
// toward a unique count, and false when the event does not match or the
// property is missing, null, an object or an array. Keys are canonical and
// typed: the string "1", the number 1 (equally 1.0 or 1e0) and the bool
// true all get different keys, and a number's key depends only on its
// value. A store that keeps the distinct keys per period gets an exact
// unique count.
func (m Meter) UniqueKey(ev Event) (string, bool) {
	if m.Property == "" || !m.Matches(ev) {
		return "", false
	}
	v, ok := lookup(ev.Properties, m.Property)
	if !ok {
		return "", false
	}
	switch x := v.(type) {
	case string:
		return "s:" + x, true
	case bool:
		if x {
			return "b:true", true
		}
		return "b:false", true
	}
	n, ok := numberOf(v)
	if !ok {
		return "", false
	}
	return "n:" + n.key(), true
}
