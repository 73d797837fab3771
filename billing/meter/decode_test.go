package meter

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeBatchJSONShapes(t *testing.T) {
	elements := `[
		{"id":"e1","customer_id":"c1","name":"api_call","timestamp":"2024-05-01T12:00:00Z","properties":{"status":200,"path":"/v1/x","ok":true,"response":{"ms":12.5},"tags":["a",1,null]}},
		{"id":"e2","customer_id":"c2","name":"storage","timestamp":"2024-05-01T14:30:00.25+02:00"}
	]`
	want := []Event{
		{
			ID: "e1", CustomerID: "c1", Name: "api_call",
			Timestamp: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
			Properties: map[string]any{
				"status": json.Number("200"), "path": "/v1/x", "ok": true,
				"response": map[string]any{"ms": json.Number("12.5")},
				"tags":     []any{"a", json.Number("1"), nil},
			},
			RawProperties: json.RawMessage(`{"status":200,"path":"/v1/x","ok":true,"response":{"ms":12.5},"tags":["a",1,null]}`),
		},
		{
			ID: "e2", CustomerID: "c2", Name: "storage",
			Timestamp: time.Date(2024, 5, 1, 12, 30, 0, 250_000_000, time.UTC),
		},
	}
	bodies := map[string]string{
		"bare array":       elements,
		"events wrapper":   `{"source":"sdk","events":` + elements + `}`,
		"charset and case": elements,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			ct := "application/json"
			if name == "charset and case" {
				ct = "Application/JSON; charset=UTF-8"
			}
			got, rejections, err := DecodeBatch([]byte(body), ct)
			if err != nil || len(rejections) != 0 {
				t.Fatalf("DecodeBatch() error = %v, rejections = %v, want none", err, rejections)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("DecodeBatch() = %#v\nwant %#v", got, want)
			}
			if got[0].Timestamp.Location() != time.UTC || got[1].Timestamp.Location() != time.UTC {
				t.Errorf("timestamps not in UTC: %v, %v", got[0].Timestamp, got[1].Timestamp)
			}
		})
	}
}

func TestDecodeBatchRawPropertiesExactAndDetached(t *testing.T) {
	props := `{ "b" : 1.50 ,"a":"\u00e9x", "n": 12345678901234567890123 }`
	body := []byte(`[{"id":"e","customer_id":"c","name":"n","timestamp":"2024-01-01T00:00:00Z","properties":` + props + `}]`)
	events, _, err := DecodeBatch(body, ContentTypeJSON)
	if err != nil || len(events) != 1 {
		t.Fatalf("DecodeBatch() = %d events, error %v; want 1 event", len(events), err)
	}
	for i := range body {
		body[i] = 'x'
	}
	if got := string(events[0].RawProperties); got != props {
		t.Errorf("RawProperties = %s, want %s exactly as received", got, props)
	}
	if got := events[0].Properties["n"]; got != json.Number("12345678901234567890123") {
		t.Errorf(`Properties["n"] = %#v, want the exact json.Number`, got)
	}
	if got := events[0].Properties["a"]; got != "éx" {
		t.Errorf(`Properties["a"] = %q, want "éx"`, got)
	}
}

func TestDecodeBatchPartial(t *testing.T) {
	good := func(id string) string {
		return `{"id":"` + id + `","customer_id":"c","name":"n","timestamp":"2024-01-01T00:00:00Z","properties":{"x":1}}`
	}
	tests := []struct {
		name       string
		element    string
		wantField  string
		wantReason string
	}{
		{"not an object", `42`, "", "must be a JSON object"},
		{"array element", `["id"]`, "", "must be a JSON object"},
		{"numeric id", `{"id":7,"customer_id":"c","name":"n"}`, "id", "must be a string"},
		{"object customer", `{"id":"a","customer_id":{},"name":"n"}`, "customer_id", "must be a string"},
		{"bool name", `{"id":"a","customer_id":"c","name":true}`, "name", "must be a string"},
		{"unix timestamp", `{"id":"a","timestamp":1714560000}`, "timestamp", "RFC 3339"},
		{"bad timestamp", `{"id":"a","timestamp":"2024-05-01 12:00:00"}`, "timestamp", "not an RFC 3339"},
		{"impossible date", `{"id":"a","timestamp":"2023-02-29T00:00:00Z"}`, "timestamp", "not an RFC 3339"},
		{"properties array", `{"id":"a","properties":[1,2]}`, "properties", "must be a JSON object"},
		{"properties string", `{"id":"a","properties":"{}"}`, "properties", "must be a JSON object"},
		{"NUL in id", `{"id":"a\u0000b"}`, "id", "NUL"},
		{"NUL in nested property", `{"id":"a","properties":{"x":{"y":"\u0000"}}}`, "properties.x.y", "NUL"},
		{"lone surrogate", `{"id":"a","properties":{"list":[1,"\ud800"]}}`, "properties.list[1]", "surrogate"},
		{"invalid UTF-8", "{\"id\":\"a\",\"name\":\"\xff\"}", "name", "UTF-8"},
		{"huge exponent", `{"id":"a","properties":{"x":1e1000}}`, "properties.x", "out of range"},
		{"long number", `{"id":"a","properties":{"x":` + strings.Repeat("9", 101) + `}}`, "properties.x", "out of range"},
		{"deep nesting", `{"id":"a","properties":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40) + `}`, "properties" + strings.Repeat(".a", 32), "deeper than 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `[` + good("first") + `,` + tt.element + `,` + good("last") + `]`
			events, rejections, err := DecodeBatch([]byte(body), ContentTypeJSON)
			if err != nil {
				t.Fatalf("DecodeBatch() error = %v, want a rejection instead", err)
			}
			if len(events) != 2 || events[0].ID != "first" || events[1].ID != "last" {
				t.Errorf("DecodeBatch() events = %+v, want first and last", events)
			}
			if len(rejections) != 1 {
				t.Fatalf("DecodeBatch() rejections = %+v, want 1", rejections)
			}
			r := rejections[0]
			if r.Index != 1 || r.Field != tt.wantField || !strings.Contains(r.Reason, tt.wantReason) {
				t.Errorf("rejection = %+v, want index 1, field %q, reason containing %q", r, tt.wantField, tt.wantReason)
			}
		})
	}
}

func TestDecodeBatchNullsAndUnknownFields(t *testing.T) {
	body := `[{"id":"a","customer_id":null,"name":"n","timestamp":null,"properties":null,"extra":{"deep":[1,{"x":"y"}]}}]`
	events, rejections, err := DecodeBatch([]byte(body), ContentTypeJSON)
	if err != nil || len(rejections) != 0 || len(events) != 1 {
		t.Fatalf("DecodeBatch() = %v, %v, %v; want one event", events, rejections, err)
	}
	ev := events[0]
	if ev.CustomerID != "" || !ev.Timestamp.IsZero() || ev.Properties != nil || ev.RawProperties != nil {
		t.Errorf("DecodeBatch() event = %+v, want nulls decoded as absent", ev)
	}
}

func TestDecodeBatchErrors(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		contentType string
		want        error
	}{
		{"plain text", `hello`, ContentTypeJSON, ErrMalformedBody},
		{"empty body", ``, ContentTypeJSON, ErrMalformedBody},
		{"truncated array", `[{"id":"a"}`, ContentTypeJSON, ErrMalformedBody},
		{"syntax error in a later element", `[{"id":"a"},{"id":}]`, ContentTypeJSON, ErrMalformedBody},
		{"trailing garbage", `[] x`, ContentTypeJSON, ErrMalformedBody},
		{"two values", `[][]`, ContentTypeJSON, ErrMalformedBody},
		{"top-level string", `"events"`, ContentTypeJSON, ErrMalformedBody},
		{"object without events", `{"data":[]}`, ContentTypeJSON, ErrMalformedBody},
		{"events not an array", `{"events":{}}`, ContentTypeJSON, ErrMalformedBody},
		{"bad escape", `[{"id":"\x"}]`, ContentTypeJSON, ErrMalformedBody},
		{"leading zero", `[{"properties":{"a":01}}]`, ContentTypeJSON, ErrMalformedBody},
		{"cloudevents batch object", `{"specversion":"1.0"}`, ContentTypeCloudEventsBatch, ErrMalformedBody},
		{"single cloudevent array", `[]`, ContentTypeCloudEvent, ErrMalformedBody},
		{"text/plain", `[]`, "text/plain", ErrUnsupportedContentType},
		{"no content type", `[]`, "", ErrUnsupportedContentType},
		{"latin1 charset", `[]`, "application/json; charset=iso-8859-1", ErrUnsupportedContentType},
		{"form", `[]`, "application/x-www-form-urlencoded", ErrUnsupportedContentType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, rejections, err := DecodeBatch([]byte(tt.body), tt.contentType)
			if !errors.Is(err, tt.want) {
				t.Errorf("DecodeBatch(%q, %q) error = %v, want %v", tt.body, tt.contentType, err, tt.want)
			}
			if events != nil || rejections != nil {
				t.Errorf("DecodeBatch(%q) returned events %v and rejections %v with an error", tt.body, events, rejections)
			}
		})
	}
}

func TestDecodeBatchEmpty(t *testing.T) {
	for _, body := range []string{`[]`, ` { "events" : [ ] } `} {
		events, rejections, err := DecodeBatch([]byte(body), ContentTypeJSON)
		if err != nil || len(events) != 0 || len(rejections) != 0 {
			t.Errorf("DecodeBatch(%q) = %v, %v, %v; want nothing and no error", body, events, rejections, err)
		}
	}
}

func TestDecodeBatchCloudEvents(t *testing.T) {
	ce := `{"specversion":"1.0","id":"ce1","source":"/api","type":"api_call","subject":"cust_9",
		"time":"2024-05-01T12:00:00Z","datacontenttype":"application/json","data":{"tokens":1500},"traceparent":"x"}`
	want := Event{
		ID: "ce1", CustomerID: "cust_9", Name: "api_call",
		Timestamp:     time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
		Properties:    map[string]any{"tokens": json.Number("1500")},
		RawProperties: json.RawMessage(`{"tokens":1500}`),
	}
	t.Run("single", func(t *testing.T) {
		events, rejections, err := DecodeBatch([]byte(ce), "application/cloudevents+json; charset=utf-8")
		if err != nil || len(rejections) != 0 || len(events) != 1 {
			t.Fatalf("DecodeBatch() = %v, %v, %v; want one event", events, rejections, err)
		}
		if !reflect.DeepEqual(events[0], want) {
			t.Errorf("DecodeBatch() = %#v, want %#v", events[0], want)
		}
	})
	t.Run("batch", func(t *testing.T) {
		events, rejections, err := DecodeBatch([]byte(`[`+ce+`,`+ce+`]`), ContentTypeCloudEventsBatch)
		if err != nil || len(rejections) != 0 || len(events) != 2 {
			t.Fatalf("DecodeBatch() = %v, %v, %v; want two events", events, rejections, err)
		}
		for i, ev := range events {
			if !reflect.DeepEqual(ev, want) {
				t.Errorf("DecodeBatch()[%d] = %#v, want %#v", i, ev, want)
			}
		}
	})

	bad := []struct {
		name       string
		event      string
		wantField  string
		wantReason string
	}{
		{"no specversion", `{"id":"a","source":"s","type":"t"}`, "specversion", "required"},
		{"old specversion", `{"specversion":"0.3","id":"a","source":"s","type":"t"}`, "specversion", "only 1.0"},
		{"no source", `{"specversion":"1.0","id":"a","type":"t"}`, "source", "required"},
		{"base64 data", `{"specversion":"1.0","id":"a","source":"s","type":"t","data_base64":"AAEC"}`, "data_base64", "not supported"},
		{"xml data", `{"specversion":"1.0","id":"a","source":"s","type":"t","datacontenttype":"application/xml","data":{}}`, "datacontenttype", "must be JSON"},
		{"string data", `{"specversion":"1.0","id":"a","source":"s","type":"t","data":"hello"}`, "data", "must be a JSON object"},
		{"bad data value", `{"specversion":"1.0","id":"a","source":"s","type":"t","data":{"k":[1e5000]}}`, "data.k[0]", "out of range"},
		{"numeric time", `{"specversion":"1.0","id":"a","source":"s","type":"t","time":5}`, "time", "RFC 3339"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			events, rejections, err := DecodeBatch([]byte(`[`+ce+`,`+tt.event+`]`), ContentTypeCloudEventsBatch)
			if err != nil {
				t.Fatalf("DecodeBatch() error = %v", err)
			}
			if len(events) != 1 || events[0].ID != "ce1" {
				t.Errorf("DecodeBatch() events = %+v, want the good one", events)
			}
			if len(rejections) != 1 || rejections[0].Index != 1 || rejections[0].Field != tt.wantField ||
				!strings.Contains(rejections[0].Reason, tt.wantReason) {
				t.Errorf("rejections = %+v, want index 1, field %q, reason containing %q", rejections, tt.wantField, tt.wantReason)
			}
		})
	}
	t.Run("single bad event is a rejection", func(t *testing.T) {
		events, rejections, err := DecodeBatch([]byte(`{"id":"a"}`), ContentTypeCloudEvent)
		if err != nil || len(events) != 0 || len(rejections) != 1 || rejections[0].Field != "specversion" {
			t.Errorf("DecodeBatch() = %v, %v, %v; want one specversion rejection", events, rejections, err)
		}
	})
}

func TestDecodeAndValidate(t *testing.T) {
	now := time.Date(2024, 5, 10, 12, 0, 0, 0, time.UTC)
	el := func(id, customer, ts string) string {
		return `{"id":"` + id + `","customer_id":"` + customer + `","name":"api_call","timestamp":"` + ts + `"}`
	}
	body := `[` + strings.Join([]string{
		el("ok1", "c", "2024-05-10T11:00:00Z"),
		el("late", "c", "2024-05-01T11:59:59Z"),
		`{"id":5}`,
		el("future", "c", "2024-05-10T12:05:01Z"),
		el("nocustomer", "", "2024-05-10T11:00:00Z"),
		el("ok2", "c", "2024-05-10T12:05:00Z"),
	}, ",") + `]`
	events, rejections, err := DecodeAndValidate([]byte(body), ContentTypeJSON, now, 9*24*time.Hour, 5*time.Minute)
	if err != nil {
		t.Fatalf("DecodeAndValidate() error = %v", err)
	}
	var ids []string
	for _, ev := range events {
		ids = append(ids, ev.ID)
	}
	if want := []string{"ok1", "ok2"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("DecodeAndValidate() event ids = %v, want %v", ids, want)
	}
	wantRej := []struct {
		index  int
		field  string
		reason string
	}{
		{1, "timestamp", "lateness limit of 216h0m0s"},
		{2, "id", "must be a string"},
		{3, "timestamp", "more than 5m0s in the future"},
		{4, "customer_id", "is required"},
	}
	if len(rejections) != len(wantRej) {
		t.Fatalf("DecodeAndValidate() rejections = %+v, want %d", rejections, len(wantRej))
	}
	for i, w := range wantRej {
		r := rejections[i]
		if r.Index != w.index || r.Field != w.field || !strings.Contains(r.Reason, w.reason) {
			t.Errorf("rejection %d = %+v, want index %d field %q reason containing %q", i, r, w.index, w.field, w.reason)
		}
	}

	t.Run("cloudevents field names", func(t *testing.T) {
		ce := `[{"specversion":"1.0","id":"a","source":"s","type":"t","time":"2024-05-10T11:00:00Z"},
			{"specversion":"1.0","id":"b","source":"s","type":"t","subject":"c","time":"2020-01-01T00:00:00Z"}]`
		_, rejections, err := DecodeAndValidate([]byte(ce), ContentTypeCloudEventsBatch, now, time.Hour, time.Minute)
		if err != nil {
			t.Fatalf("DecodeAndValidate() error = %v", err)
		}
		if len(rejections) != 2 || rejections[0].Field != "subject" || rejections[1].Field != "time" {
			t.Errorf("DecodeAndValidate() rejections = %+v, want subject (index 0) and time (index 1)", rejections)
		}
	})
}

func TestParseTimestamp(t *testing.T) {
	valid := []string{
		"2024-05-01T12:00:00Z",
		"2024-05-01T12:00:00.123456789Z",
		"2024-05-01T12:00:00.1234567891234Z",
		"2024-02-29T23:59:59+14:00",
		"1999-12-31T23:59:59.5-08:30",
		"0001-01-01T00:00:00Z",
		"9999-12-31T23:59:59-23:59",
	}
	for _, s := range valid {
		want, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatalf("time.Parse(%q) error = %v", s, err)
		}
		got, ok := parseTimestamp([]byte(s))
		if !ok || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("parseTimestamp(%q) = %v, %v; want %v in UTC", s, got, ok, want)
		}
	}
	if got, ok := parseTimestamp([]byte("2024-05-01t12:00:00z")); !ok || !got.Equal(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("parseTimestamp(lowercase t and z) = %v, %v; want 2024-05-01 12:00 UTC", got, ok)
	}
	invalid := []string{
		"", "2024-05-01", "2024-05-01T12:00:00", "2024-05-01 12:00:00Z", "2024-13-01T00:00:00Z",
		"2023-02-29T00:00:00Z", "2024-04-31T00:00:00Z", "2024-05-01T24:00:00Z", "2024-05-01T12:60:00Z",
		"2024-05-01T12:00:60Z", "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00+0200", "2024-05-01T12:00:00+24:00",
		"2024-05-01T12:00:00ZZ", "+2024-05-01T12:00:00Z", "2024-05-01T12:00:00,5Z",
	}
	for _, s := range invalid {
		if got, ok := parseTimestamp([]byte(s)); ok {
			t.Errorf("parseTimestamp(%q) = %v, want failure", s, got)
		}
	}
}

func TestValidate(t *testing.T) {
	now := time.Date(2024, 5, 10, 12, 0, 0, 0, time.UTC)
	base := Event{ID: "e", CustomerID: "c", Name: "n", Timestamp: now}
	with := func(f func(*Event)) Event {
		ev := base
		f(&ev)
		return ev
	}
	tests := []struct {
		name       string
		ev         Event
		lateness   time.Duration
		future     time.Duration
		wantField  string
		wantReason string
	}{
		{"valid", base, time.Hour, time.Minute, "", ""},
		{"missing id", with(func(e *Event) { e.ID = "" }), 0, 0, "id", "is required"},
		{"id 255 chars", with(func(e *Event) { e.ID = strings.Repeat("é", 255) }), 0, 0, "", ""},
		{"id 256 chars", with(func(e *Event) { e.ID = strings.Repeat("a", 256) }), 0, 0, "id", "256 characters long; at most 255"},
		{"customer 256 chars", with(func(e *Event) { e.CustomerID = strings.Repeat("é", 256) }), 0, 0, "customer_id", "at most 255"},
		{"missing customer", with(func(e *Event) { e.CustomerID = "" }), 0, 0, "customer_id", "is required"},
		{"missing name", with(func(e *Event) { e.Name = "" }), 0, 0, "name", "is required"},
		{"NUL in name", with(func(e *Event) { e.Name = "a\x00" }), 0, 0, "name", "NUL"},
		{"bad UTF-8 in id", with(func(e *Event) { e.ID = "é\xff" }), 0, 0, "id", "UTF-8"},
		{"missing timestamp", with(func(e *Event) { e.Timestamp = time.Time{} }), 0, 0, "timestamp", "is required"},
		{"exactly at lateness bound", with(func(e *Event) { e.Timestamp = now.Add(-time.Hour) }), time.Hour, 0, "", ""},
		{"past lateness bound", with(func(e *Event) { e.Timestamp = now.Add(-time.Hour - time.Nanosecond) }), time.Hour, 0, "timestamp", "older than the lateness limit of 1h0m0s (earliest accepted 2024-05-10T11:00:00Z)"},
		{"old but no lateness bound", with(func(e *Event) { e.Timestamp = now.AddDate(-5, 0, 0) }), 0, time.Minute, "", ""},
		{"exactly at future bound", with(func(e *Event) { e.Timestamp = now.Add(time.Minute) }), 0, time.Minute, "", ""},
		{"past future bound", with(func(e *Event) { e.Timestamp = now.Add(time.Minute + time.Second) }), 0, time.Minute, "timestamp", "more than 1m0s in the future (latest accepted 2024-05-10T12:01:00Z)"},
		{"properties not object", with(func(e *Event) { e.RawProperties = json.RawMessage(` [1]`) }), 0, 0, "properties", "must be a JSON object"},
		{"properties object", with(func(e *Event) { e.RawProperties = json.RawMessage(` {"a":1}`) }), 0, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Validate(tt.ev, now, tt.lateness, tt.future)
			if tt.wantField == "" && tt.wantReason == "" {
				if got != nil {
					t.Errorf("Validate() = %v, want nil", got)
				}
				return
			}
			if got == nil || got.Field != tt.wantField || !strings.Contains(got.Reason, tt.wantReason) {
				t.Errorf("Validate() = %+v, want field %q with reason containing %q", got, tt.wantField, tt.wantReason)
			}
		})
	}
}
