package meter

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"
)

var fuzzContentTypes = []string{ContentTypeJSON, ContentTypeCloudEventsBatch, ContentTypeCloudEvent}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`[{"id":"e","customer_id":"c","name":"n","timestamp":"2024-01-01T00:00:00Z","properties":{"a":{"b":[1,"x",true,null]},"n":-1.5e3}}]`), uint8(0))
	f.Add([]byte(`{"events":[{"id":7},{"id":"\u00e9\ud83d\ude00","properties":{"k":"\n\"\\"}}, 3]}`), uint8(0))
	f.Add([]byte(`[{"specversion":"1.0","id":"a","source":"s","type":"t","subject":"c","time":"2024-01-01T00:00:00+01:00","data":{"x":1}}]`), uint8(1))
	f.Add([]byte(`{"specversion":"1.0","id":"a","source":"s","type":"t","data_base64":"AA=="}`), uint8(2))
	f.Add([]byte(`[1, {"properties":{"a":1e1000}}, {"properties":{"\ud800":0}}]`), uint8(0))
	f.Fuzz(func(t *testing.T, body []byte, kind uint8) {
		ct := fuzzContentTypes[int(kind)%len(fuzzContentTypes)]
		original := bytes.Clone(body)
		events, rejections, err := DecodeBatch(body, ct)
		if !bytes.Equal(body, original) {
			t.Fatalf("DecodeBatch modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrMalformedBody) {
				t.Fatalf("DecodeBatch() error = %v, want ErrMalformedBody", err)
			}
			if events != nil || rejections != nil {
				t.Fatalf("DecodeBatch() returned results with error %v", err)
			}
			trimmed := bytes.TrimLeft(body, " \t\r\n")
			if ct != ContentTypeCloudEvent && len(trimmed) > 0 && trimmed[0] == '[' && json.Valid(body) {
				t.Fatalf("DecodeBatch(%q) = %v for a valid JSON array", body, err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("DecodeBatch(%q) accepted invalid JSON", body)
		}
		last := -1
		for _, r := range rejections {
			if r.Index <= last {
				t.Fatalf("rejection indexes not increasing: %+v", rejections)
			}
			last = r.Index
			if r.Reason == "" {
				t.Fatalf("rejection without a reason: %+v", r)
			}
		}
		for _, ev := range events {
			for _, s := range []string{ev.ID, ev.CustomerID, ev.Name} {
				if !cleanText(s) {
					t.Fatalf("event field %q is not clean text", s)
				}
			}
			if ev.RawProperties == nil {
				if ev.Properties != nil {
					t.Fatalf("Properties without RawProperties: %+v", ev)
				}
				continue
			}
			if !utf8.Valid(ev.RawProperties) {
				t.Fatalf("RawProperties %q is not valid UTF-8", ev.RawProperties)
			}
			dec := json.NewDecoder(bytes.NewReader(ev.RawProperties))
			dec.UseNumber()
			var want map[string]any
			if err := dec.Decode(&want); err != nil {
				t.Fatalf("RawProperties %q do not decode: %v", ev.RawProperties, err)
			}
			if !reflect.DeepEqual(ev.Properties, want) {
				t.Fatalf("Properties = %#v, encoding/json reads RawProperties %s as %#v", ev.Properties, ev.RawProperties, want)
			}
		}
	})
}

var fuzzAggregations = []Aggregation{AggregationCount, AggregationSum, AggregationMax, AggregationMin, AggregationLast, AggregationUniqueCount}

func FuzzFilter(f *testing.F) {
	f.Add([]byte(`{"logic":"or","conditions":[{"property":"a.b","operator":"gt","value":1.5}],"groups":[{"conditions":[{"property":"s","operator":"contains","value":"x"}]}]}`),
		[]byte(`{"a":{"b":2},"s":"xyz"}`), uint8(1))
	f.Add([]byte(`{"conditions":[{"property":"a","operator":"equals","value":1e400},{"property":"a","operator":"not_equals","value":true}]}`),
		[]byte(`{"a":1e999999999}`), uint8(5))
	f.Add([]byte(`{"conditions":[{"property":"a","operator":"lte","value":"5"}]}`), []byte(`{"a":-0.0}`), uint8(4))
	f.Fuzz(func(t *testing.T, filterJSON, propsJSON []byte, agg uint8) {
		var flt Filter
		if err := json.Unmarshal(filterJSON, &flt); err != nil {
			return
		}
		var props map[string]any
		dec := json.NewDecoder(bytes.NewReader(propsJSON))
		dec.UseNumber()
		if err := dec.Decode(&props); err != nil {
			return
		}
		m := Meter{Slug: "m", Name: "M", EventName: "e", Aggregation: fuzzAggregations[int(agg)%len(fuzzAggregations)], Property: "a", Filter: &flt}
		if m.Aggregation == AggregationCount {
			m.Property = ""
		}
		_ = m.Validate()
		ev := Event{Name: "e", Properties: props}
		matched := m.Matches(ev)
		if again := m.Matches(ev); again != matched {
			t.Fatalf("Matches() = %v then %v", matched, again)
		}
		if _, ok := m.Value(ev); ok && !matched {
			t.Fatalf("Value() counted an event that Matches() rejects")
		}
		if _, ok := m.UniqueKey(ev); ok && !matched {
			t.Fatalf("UniqueKey() counted an event that Matches() rejects")
		}
		// A single condition and its negation never both match.
		for _, c := range flt.Conditions {
			neg := c
			switch c.Operator {
			case OpEquals:
				neg.Operator = OpNotEquals
			case OpContains:
				neg.Operator = OpNotContains
			default:
				continue
			}
			if c.matches(props) && neg.matches(props) {
				t.Fatalf("condition %+v and its negation both match %v", c, props)
			}
		}
	})
}

func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"2024-05-01T12:00:00Z", "2024-02-29T23:59:59.123456789+14:00", "1999-12-31t23:59:59.5-08:30"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseTimestamp([]byte(s))
		if !ok {
			return
		}
		// time.Parse accepts only the uppercase separators.
		upper := []byte(s)
		upper[10] = 'T'
		if last := len(upper) - 1; upper[last] == 'z' {
			upper[last] = 'Z'
		}
		want, err := time.Parse(time.RFC3339, string(upper))
		if err != nil || !got.Equal(want) {
			t.Fatalf("parseTimestamp(%q) = %v, time.Parse = %v, %v", s, got, want, err)
		}
	})
}
