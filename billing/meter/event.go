// Package meter is billcycle's pure metering domain: usage events as they
// arrive from customers, their decoding and validation, meter definitions
// with filters, and the mergeable aggregation state that rollups keep.
//
// The package does no I/O. It sits on the ingest hot path, so decoding and
// evaluation avoid needless allocation; numbers are never converted to
// floating point: property numbers are json.Number and quantities are
// decimal.Decimal.
package meter

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// Limits on event fields, in Unicode characters.
const (
	MaxIDLength         = 255 // longest accepted event id
	MaxCustomerIDLength = 255 // longest accepted customer id
	MaxNameLength       = 255 // longest accepted event name
)

// Event is one usage event reported by a customer's system.
//
// Properties holds the decoded properties object: nested objects are
// map[string]any, arrays []any, numbers json.Number (never float64), and
// JSON null is kept as a nil value, which evaluation treats as missing.
// RawProperties is the same object exactly as it was received, so that a
// store can write it to a JSONB column without marshalling it again. Both
// are nil when the event had no properties (absent or null). Events built
// in Go rather than decoded must keep the two consistent themselves.
type Event struct {
	ID            string          `json:"id"`
	CustomerID    string          `json:"customer_id"`
	Name          string          `json:"name"`
	Timestamp     time.Time       `json:"timestamp"`
	Properties    map[string]any  `json:"properties,omitempty"`
	RawProperties json.RawMessage `json:"-"`
}

// Rejection explains why one element of a batch was not accepted. Index is
// the element's zero-based position in the submitted array (0 for a single
// CloudEvent). Field names the offending field with its name in the
// submitted JSON (for example "customer_id", "timestamp", "properties.x",
// or "subject" for a CloudEvent); it is empty when the element as a whole
// is wrong, such as a number where an object belongs.
type Rejection struct {
	Index  int    `json:"index"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// Error makes a Rejection usable as an error.
func (r *Rejection) Error() string {
	if r.Field == "" {
		return fmt.Sprintf("event %d: %s", r.Index, r.Reason)
	}
	return fmt.Sprintf("event %d: %s: %s", r.Index, r.Field, r.Reason)
}

// Validate checks the rules every stored event must satisfy and returns nil
// when ev is acceptable, or a Rejection (with Index 0; the caller sets the
// position) for the first rule it breaks:
//
//   - id, customer_id and name are required, valid UTF-8 without NUL
//     characters, and at most 255 characters long;
//   - timestamp is required, not earlier than now-maxLateness and not later
//     than now+maxFuture; a bound that is zero or negative is not checked;
//   - properties, when present, are a JSON object.
//
// Field names are those of the event JSON format (customer_id, timestamp);
// DecodeAndValidate reports CloudEvents with their own names instead.
func Validate(ev Event, now time.Time, maxLateness, maxFuture time.Duration) *Rejection {
	if r := checkText("id", ev.ID, MaxIDLength); r != nil {
		return r
	}
	if r := checkText("customer_id", ev.CustomerID, MaxCustomerIDLength); r != nil {
		return r
	}
	if r := checkText("name", ev.Name, MaxNameLength); r != nil {
		return r
	}
	if ev.Timestamp.IsZero() {
		return &Rejection{Field: "timestamp", Reason: "is required"}
	}
	if maxLateness > 0 {
		if earliest := now.Add(-maxLateness); ev.Timestamp.Before(earliest) {
			return &Rejection{Field: "timestamp", Reason: fmt.Sprintf(
				"is older than the lateness limit of %s (earliest accepted %s)",
				maxLateness, earliest.UTC().Format(time.RFC3339))}
		}
	}
	if maxFuture > 0 {
		if latest := now.Add(maxFuture); ev.Timestamp.After(latest) {
			return &Rejection{Field: "timestamp", Reason: fmt.Sprintf(
				"is more than %s in the future (latest accepted %s)",
				maxFuture, latest.UTC().Format(time.RFC3339))}
		}
	}
	if len(ev.RawProperties) > 0 {
		if c := firstNonSpace(ev.RawProperties); c != '{' {
			return &Rejection{Field: "properties", Reason: "must be a JSON object"}
		}
	}
	return nil
}

// checkText applies the required, encoding and length rules to a string field.
func checkText(field, s string, max int) *Rejection {
	if s == "" {
		return &Rejection{Field: field, Reason: "is required"}
	}
	if len(s) > max {
		// Only a string longer than max bytes can be longer than max characters.
		if n := utf8.RuneCountInString(s); n > max {
			return &Rejection{Field: field, Reason: fmt.Sprintf("is %d characters long; at most %d allowed", n, max)}
		}
	}
	if !cleanText(s) {
		return &Rejection{Field: field, Reason: "must be valid UTF-8 without NUL characters"}
	}
	return nil
}

// cleanText reports whether s is valid UTF-8 and free of NUL, the two things
// a Postgres text column cannot hold.
func cleanText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 {
			return false
		}
		if c >= utf8.RuneSelf {
			return utf8.ValidString(s[i:]) && !containsNUL(s[i:])
		}
	}
	return true
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

func firstNonSpace(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
		default:
			return c
		}
	}
	return 0
}
