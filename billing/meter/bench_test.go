package meter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// realisticBatch builds a body of n API-usage events like those a customer's
// SDK sends: uuid-sized ids, a handful of flat and nested properties.
func realisticBatch(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"events":[`)
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	methods := []string{"GET", "POST", "DELETE"}
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"evt_%08x-4b1c-9d2e-%012x","customer_id":"cus_%06d","name":"api_request",`+
			`"timestamp":"%s","properties":{"method":"%s","path":"/v1/charges/%d","status":%d,`+
			`"duration_ms":%d.%03d,"bytes":%d,"region":"eu-west-1","response":{"cached":%t,"tokens":%d}}}`,
			i, i*7919, i%500, t0.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano),
			methods[i%3], i, 200+(i%7)*50, i%900, i%1000, 512+i*3, i%2 == 0, 100+i%4000)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func BenchmarkDecodeBatch1000(b *testing.B) {
	body := realisticBatch(1000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		events, rejections, err := DecodeBatch(body, ContentTypeJSON)
		if err != nil || len(events) != 1000 || len(rejections) != 0 {
			b.Fatalf("DecodeBatch() = %d events, %v, %v", len(events), rejections, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
}

func BenchmarkDecodeAndValidate1000(b *testing.B) {
	body := realisticBatch(1000)
	now := time.Date(2024, 5, 1, 12, 0, 1, 0, time.UTC)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		events, _, err := DecodeAndValidate(body, ContentTypeJSON, now, 35*24*time.Hour, 5*time.Minute)
		if err != nil || len(events) != 1000 {
			b.Fatalf("DecodeAndValidate() = %d events, %v", len(events), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
}

// BenchmarkDecodeBatch1000Stdlib decodes the same body with encoding/json
// (UseNumber, no validation, no per-element recovery) for comparison.
func BenchmarkDecodeBatch1000Stdlib(b *testing.B) {
	body := realisticBatch(1000)
	type wire struct {
		ID         string          `json:"id"`
		CustomerID string          `json:"customer_id"`
		Name       string          `json:"name"`
		Timestamp  time.Time       `json:"timestamp"`
		Properties json.RawMessage `json:"properties"`
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var batch struct{ Events []wire }
		if err := json.Unmarshal(body, &batch); err != nil {
			b.Fatal(err)
		}
		for _, w := range batch.Events {
			dec := json.NewDecoder(bytes.NewReader(w.Properties))
			dec.UseNumber()
			var p map[string]any
			if err := dec.Decode(&p); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/event")
}

func benchMeter(b *testing.B) (Meter, []Event) {
	var f Filter
	err := json.Unmarshal([]byte(`{"logic":"and","conditions":[
		{"property":"method","operator":"equals","value":"POST"},
		{"property":"region","operator":"not_equals","value":"test"}],
		"groups":[{"logic":"or","conditions":[
			{"property":"status","operator":"gte","value":400},
			{"property":"duration_ms","operator":"gt","value":250.5},
			{"property":"response.cached","operator":"equals","value":true}]}]}`), &f)
	if err != nil {
		b.Fatal(err)
	}
	m := Meter{Slug: "slow_posts", Name: "Slow posts", EventName: "api_request", Aggregation: AggregationSum, Property: "response.tokens", Filter: &f}
	if err := m.Validate(); err != nil {
		b.Fatal(err)
	}
	events, _, err := DecodeBatch(realisticBatch(1000), ContentTypeJSON)
	if err != nil {
		b.Fatal(err)
	}
	return m, events
}

func BenchmarkMatch(b *testing.B) {
	m, events := benchMeter(b)
	matched := 0
	b.ReportAllocs()
	for b.Loop() {
		for i := range events {
			if m.Matches(events[i]) {
				matched++
			}
		}
	}
	if matched == 0 {
		b.Fatal("no event matched")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
}

func BenchmarkValueAndRollup(b *testing.B) {
	m, events := benchMeter(b)
	b.ReportAllocs()
	for b.Loop() {
		var r Rollup
		for i := range events {
			if v, ok := m.Value(events[i]); ok {
				r.Add(v, events[i].Timestamp, events[i].ID)
			}
		}
		if r.Count == 0 {
			b.Fatal("no event counted")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
}
