package meter

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

// props decodes a properties object the way DecodeBatch does.
func props(t testing.TB, s string) map[string]any {
	t.Helper()
	body := `[{"id":"e","customer_id":"c","name":"api_call","timestamp":"2024-01-01T00:00:00Z","properties":` + s + `}]`
	events, rejections, err := DecodeBatch([]byte(body), ContentTypeJSON)
	if err != nil || len(rejections) != 0 || len(events) != 1 {
		t.Fatalf("decode properties %s: %v %v", s, rejections, err)
	}
	return events[0].Properties
}

func TestConditionOperators(t *testing.T) {
	const p = `{"status":200,"ms":12.50,"big":12345678901234567890.5,"path":"/v1/charges","ok":true,
		"zero":0,"neg":-3,"str_num":"200","nothing":null,"response":{"status":404,"headers":{"type":"json"}},"list":[1,2]}`
	tests := []struct {
		property string
		op       Operator
		value    any
		want     bool
	}{
		// equals: numbers numerically, strings and bools exactly, no cross-type equality.
		{"status", OpEquals, json.Number("200"), true},
		{"status", OpEquals, json.Number("200.0"), true},
		{"status", OpEquals, json.Number("2e2"), true},
		{"status", OpEquals, 200, true},
		{"status", OpEquals, 200.0, true},
		{"status", OpEquals, decimal.NewFromInt(200), true},
		{"status", OpEquals, json.Number("201"), false},
		{"status", OpEquals, "200", false},
		{"str_num", OpEquals, "200", true},
		{"str_num", OpEquals, json.Number("200"), false},
		{"ms", OpEquals, json.Number("12.5"), true},
		{"ms", OpEquals, 12.5, true},
		{"big", OpEquals, json.Number("12345678901234567890.50"), true},
		{"big", OpEquals, json.Number("12345678901234567890.51"), false},
		{"ok", OpEquals, true, true},
		{"ok", OpEquals, false, false},
		{"ok", OpEquals, "true", false},
		{"path", OpEquals, "/v1/charges", true},
		{"path", OpEquals, "/V1/charges", false},
		{"response", OpEquals, "x", false},
		{"list", OpEquals, json.Number("1"), false},
		{"missing", OpEquals, "x", false},
		{"nothing", OpEquals, "x", false},
		// not_equals: present and different; missing or null never matches.
		{"status", OpNotEquals, json.Number("201"), true},
		{"status", OpNotEquals, json.Number("200.00"), false},
		{"status", OpNotEquals, "200", true},
		{"path", OpNotEquals, "/v1/refunds", true},
		{"ok", OpNotEquals, false, true},
		{"missing", OpNotEquals, "x", false},
		{"nothing", OpNotEquals, "x", false},
		{"response.missing", OpNotEquals, json.Number("1"), false},
		// numeric comparisons, exact.
		{"status", OpGreater, json.Number("199.999999999999999999"), true},
		{"status", OpGreater, json.Number("200"), false},
		{"status", OpGreaterOrEqual, json.Number("200"), true},
		{"status", OpLess, json.Number("200.000000000000000001"), true},
		{"status", OpLessOrEqual, json.Number("2E+2"), true},
		{"status", OpLess, json.Number("200"), false},
		{"ms", OpGreater, json.Number("12.49"), true},
		{"ms", OpLess, 12.51, true},
		{"neg", OpLess, json.Number("0"), true},
		{"zero", OpGreaterOrEqual, json.Number("-0"), true},
		{"big", OpGreater, json.Number("12345678901234567890"), true},
		{"big", OpGreater, int64(math.MaxInt64), true},
		{"str_num", OpGreater, json.Number("100"), false},
		{"ok", OpGreater, json.Number("0"), false},
		{"missing", OpLess, json.Number("1"), false},
		{"nothing", OpLess, json.Number("1"), false},
		// contains on strings only.
		{"path", OpContains, "charges", true},
		{"path", OpContains, "refunds", false},
		{"path", OpContains, "", true},
		{"status", OpContains, "20", false},
		{"path", OpNotContains, "refunds", true},
		{"path", OpNotContains, "v1", false},
		{"status", OpNotContains, "x", false},
		{"missing", OpNotContains, "x", false},
		// nested paths.
		{"response.status", OpEquals, json.Number("404"), true},
		{"response.status", OpGreaterOrEqual, json.Number("400"), true},
		{"response.headers.type", OpEquals, "json", true},
		{"response.headers.type.x", OpEquals, "json", false},
		{"path.x", OpEquals, "json", false},
		{"list.0", OpEquals, json.Number("1"), false},
	}
	pm := props(t, p)
	for _, tt := range tests {
		name := fmt.Sprintf("%s %s %v(%T)", tt.property, tt.op, tt.value, tt.value)
		t.Run(name, func(t *testing.T) {
			m := Meter{Slug: "m", Name: "M", EventName: "api_call", Aggregation: AggregationCount,
				Filter: &Filter{Conditions: []Condition{{Property: tt.property, Operator: tt.op, Value: tt.value}}}}
			if err := m.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			ev := Event{Name: "api_call", Properties: pm}
			if got := m.Matches(ev); got != tt.want {
				t.Errorf("Matches(%s %s %v) = %v, want %v", tt.property, tt.op, tt.value, got, tt.want)
			}
		})
	}
}

func TestFilterGroups(t *testing.T) {
	// (method = POST and (status >= 500 or (status = 429 and retry = true))) with region not_equals "test"
	filterJSON := `{"logic":"and","conditions":[{"property":"method","operator":"equals","value":"POST"},
		{"property":"region","operator":"not_equals","value":"test"}],
		"groups":[{"logic":"or","conditions":[{"property":"status","operator":"gte","value":500}],
			"groups":[{"conditions":[{"property":"status","operator":"equals","value":429},
				{"property":"retry","operator":"equals","value":true}]}]}]}`
	var f Filter
	if err := json.Unmarshal([]byte(filterJSON), &f); err != nil {
		t.Fatalf("unmarshal filter: %v", err)
	}
	m := Meter{Slug: "errors", Name: "Errors", EventName: "req", Aggregation: AggregationCount, Filter: &f}
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	tests := []struct {
		props string
		want  bool
	}{
		{`{"method":"POST","region":"eu","status":503}`, true},
		{`{"method":"POST","region":"eu","status":500.0}`, true},
		{`{"method":"POST","region":"eu","status":499}`, false},
		{`{"method":"POST","region":"eu","status":429,"retry":true}`, true},
		{`{"method":"POST","region":"eu","status":429,"retry":false}`, false},
		{`{"method":"POST","region":"eu","status":429}`, false},
		{`{"method":"GET","region":"eu","status":503}`, false},
		{`{"method":"POST","region":"test","status":503}`, false},
		{`{"method":"POST","status":503}`, false}, // region missing: not_equals does not match
		{`{"method":"POST","region":"eu","status":"503"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.props, func(t *testing.T) {
			ev := Event{Name: "req", Properties: props(t, tt.props)}
			if got := m.Matches(ev); got != tt.want {
				t.Errorf("Matches(%s) = %v, want %v", tt.props, got, tt.want)
			}
		})
	}
	if m.Matches(Event{Name: "other", Properties: props(t, `{"method":"POST","region":"eu","status":503}`)}) {
		t.Errorf("Matches(event named other) = true, want false")
	}
	if !(Meter{EventName: "req"}).Matches(Event{Name: "req"}) {
		t.Errorf("Matches(no filter, no properties) = false, want true")
	}
}

func TestConditionUnmarshalKeepsNumbersExact(t *testing.T) {
	var c Condition
	if err := json.Unmarshal([]byte(`{"property":"x","operator":"gt","value":12345678901234567890.1}`), &c); err != nil {
		t.Fatalf("Unmarshal() error = %v", err)
	}
	if c.Value != json.Number("12345678901234567890.1") {
		t.Errorf("Unmarshal() value = %#v, want json.Number(12345678901234567890.1)", c.Value)
	}
	back, err := json.Marshal(c)
	if err != nil || string(back) != `{"property":"x","operator":"gt","value":12345678901234567890.1}` {
		t.Errorf("Marshal() = %s, %v; want the number unchanged", back, err)
	}
}

func TestMeterValidate(t *testing.T) {
	valid := Meter{Slug: "api_calls-v2", Name: "API calls", EventName: "api_call", Aggregation: AggregationSum, Property: "usage.tokens"}
	with := func(f func(*Meter)) Meter {
		m := valid
		f(&m)
		return m
	}
	cond := func(prop string, op Operator, v any) Condition {
		return Condition{Property: prop, Operator: op, Value: v}
	}
	deep := &Filter{Conditions: []Condition{cond("a", OpEquals, "x")}}
	for i := 0; i < MaxFilterDepth; i++ {
		deep = &Filter{Groups: []Filter{*deep}}
	}
	many := &Filter{Logic: LogicOr}
	for i := 0; i < 26; i++ {
		many.Conditions = append(many.Conditions, cond("a", OpEquals, "x"))
		if i < 25 {
			many.Groups = append(many.Groups, Filter{Conditions: []Condition{cond("b", OpEquals, "y")}})
		}
	}
	tests := []struct {
		name      string
		m         Meter
		wantField string
		wantMsg   string
	}{
		{"valid", valid, "", ""},
		{"valid count", with(func(m *Meter) { m.Aggregation = AggregationCount; m.Property = "" }), "", ""},
		{"missing slug", with(func(m *Meter) { m.Slug = "" }), "slug", "1 to 64"},
		{"long slug", with(func(m *Meter) { m.Slug = strings.Repeat("a", 65) }), "slug", "1 to 64"},
		{"64 char slug", with(func(m *Meter) { m.Slug = strings.Repeat("a", 64) }), "", ""},
		{"uppercase slug", with(func(m *Meter) { m.Slug = "API" }), "slug", "found 'A'"},
		{"slug with space", with(func(m *Meter) { m.Slug = "a b" }), "slug", "found ' '"},
		{"missing name", with(func(m *Meter) { m.Name = "" }), "name", "is required"},
		{"missing event name", with(func(m *Meter) { m.EventName = "" }), "event_name", "is required"},
		{"long event name", with(func(m *Meter) { m.EventName = strings.Repeat("e", 256) }), "event_name", "at most 255"},
		{"missing aggregation", with(func(m *Meter) { m.Aggregation = "" }), "aggregation", "is required"},
		{"unknown aggregation", with(func(m *Meter) { m.Aggregation = "avg" }), "aggregation", `unknown aggregation "avg"`},
		{"sum without property", with(func(m *Meter) { m.Property = "" }), "property", "sum needs a property"},
		{"unique without property", with(func(m *Meter) { m.Aggregation = AggregationUniqueCount; m.Property = "" }), "property", "unique_count needs a property"},
		{"count with property", with(func(m *Meter) { m.Aggregation = AggregationCount }), "property", "not used by count"},
		{"empty path segment", with(func(m *Meter) { m.Property = "usage..tokens" }), "property", "empty segment"},
		{"trailing dot", with(func(m *Meter) { m.Property = "usage." }), "property", "empty segment"},
		{"long unit", with(func(m *Meter) { m.Unit = strings.Repeat("u", 65) }), "unit", "at most 64"},
		{"bad logic", with(func(m *Meter) {
			m.Filter = &Filter{Logic: "xor", Conditions: []Condition{cond("a", OpEquals, "x")}}
		}), "filter.logic", `not "xor"`},
		{"empty filter", with(func(m *Meter) { m.Filter = &Filter{Logic: LogicAnd} }), "filter.conditions", "at least one"},
		{"gt with string value", with(func(m *Meter) {
			m.Filter = &Filter{Groups: []Filter{{Conditions: []Condition{cond("a", OpEquals, "x"), cond("status", OpGreater, "500")}}}}
		}), "filter.groups[0].conditions[1].value", "gt needs a numeric value"},
		{"lte with bool", with(func(m *Meter) { m.Filter = &Filter{Conditions: []Condition{cond("a", OpLessOrEqual, true)}} }), "filter.conditions[0].value", "numeric"},
		{"gte with NaN", with(func(m *Meter) { m.Filter = &Filter{Conditions: []Condition{cond("a", OpGreaterOrEqual, math.NaN())}} }), "filter.conditions[0].value", "non-finite"},
		{"lt with huge exponent", with(func(m *Meter) {
			m.Filter = &Filter{Conditions: []Condition{cond("a", OpLess, json.Number("1e99999"))}}
		}), "filter.conditions[0].value", "out of range"},
		{"contains with number", with(func(m *Meter) {
			m.Filter = &Filter{Conditions: []Condition{cond("a", OpContains, json.Number("5"))}}
		}), "filter.conditions[0].value", "contains needs a string"},
		{"equals with object", with(func(m *Meter) {
			m.Filter = &Filter{Conditions: []Condition{cond("a", OpEquals, map[string]any{})}}
		}), "filter.conditions[0].value", "string, number or bool"},
		{"equals with null", with(func(m *Meter) { m.Filter = &Filter{Conditions: []Condition{cond("a", OpEquals, nil)}} }), "filter.conditions[0].value", "is required"},
		{"missing operator", with(func(m *Meter) { m.Filter = &Filter{Conditions: []Condition{cond("a", "", "x")}} }), "filter.conditions[0].operator", "is required"},
		{"unknown operator", with(func(m *Meter) { m.Filter = &Filter{Conditions: []Condition{cond("a", "like", "x")}} }), "filter.conditions[0].operator", `unknown operator "like"`},
		{"missing condition property", with(func(m *Meter) {
			m.Filter = &Filter{Groups: []Filter{{}, {Conditions: []Condition{cond("", OpEquals, "x")}}}}
		}), "filter.groups[0].conditions", "at least one"},
		{"bad condition property", with(func(m *Meter) {
			m.Filter = &Filter{Groups: []Filter{{Conditions: []Condition{cond("a", OpEquals, "x")}}, {Conditions: []Condition{cond(".a", OpEquals, "x")}}}}
		}), "filter.groups[1].conditions[0].property", "empty segment"},
		{"too deep", with(func(m *Meter) { m.Filter = deep }), "filter" + strings.Repeat(".groups[0]", MaxFilterDepth), "deeper than 5"},
		{"too many conditions", with(func(m *Meter) { m.Filter = many }), "filter.groups[24].conditions[0]", "at most 50 conditions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v, want a *FieldError", err)
			}
			if fe.Field != tt.wantField || !strings.Contains(fe.Message, tt.wantMsg) {
				t.Errorf("Validate() = %q: %q, want field %q with message containing %q", fe.Field, fe.Message, tt.wantField, tt.wantMsg)
			}
		})
	}
}

func TestMeterValue(t *testing.T) {
	ev := Event{ID: "e1", Name: "api_call", Properties: props(t,
		`{"tokens":1500,"cost":"0.10","ratio":0.1,"usage":{"bytes":1e3},"flag":true,"none":null,"region":"eu"}`)}
	filter := &Filter{Conditions: []Condition{{Property: "region", Operator: OpEquals, Value: "eu"}}}
	tests := []struct {
		agg      Aggregation
		property string
		filter   *Filter
		wantOK   bool
		want     string
	}{
		{AggregationCount, "", nil, true, "1"},
		{AggregationCount, "", filter, true, "1"},
		{AggregationSum, "tokens", nil, true, "1500"},
		{AggregationSum, "tokens", filter, true, "1500"},
		{AggregationMax, "ratio", nil, true, "0.1"},
		{AggregationMin, "usage.bytes", nil, true, "1000"},
		{AggregationLast, "tokens", nil, true, "1500"},
		{AggregationSum, "cost", nil, false, ""},  // a string is not a number
		{AggregationSum, "flag", nil, false, ""},  // nor a bool
		{AggregationSum, "none", nil, false, ""},  // null counts as missing
		{AggregationSum, "usage", nil, false, ""}, // an object is not a number
		{AggregationSum, "missing", nil, false, ""},
		{AggregationUniqueCount, "region", nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s", tt.agg, tt.property), func(t *testing.T) {
			m := Meter{EventName: "api_call", Aggregation: tt.agg, Property: tt.property, Filter: tt.filter}
			got, ok := m.Value(ev)
			if ok != tt.wantOK || (ok && !got.Equal(decimal.RequireFromString(tt.want))) {
				t.Errorf("Value() = %v, %v; want %s, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
	t.Run("not matching", func(t *testing.T) {
		m := Meter{EventName: "api_call", Aggregation: AggregationCount,
			Filter: &Filter{Conditions: []Condition{{Property: "region", Operator: OpEquals, Value: "us"}}}}
		if got, ok := m.Value(ev); ok {
			t.Errorf("Value() = %v, true; want false for an event the filter rejects", got)
		}
	})
}

func TestMeterUniqueKey(t *testing.T) {
	key := func(p string) (string, bool) {
		m := Meter{EventName: "login", Aggregation: AggregationUniqueCount, Property: "user"}
		return m.UniqueKey(Event{Name: "login", Properties: props(t, p)})
	}
	same := [][]string{
		{`{"user":1}`, `{"user":1.0}`, `{"user":1e0}`, `{"user":10e-1}`},
		{`{"user":1500}`, `{"user":1.5e3}`, `{"user":1500.000}`},
		{`{"user":0}`, `{"user":-0}`, `{"user":0.0e5}`},
		{`{"user":12345678901234567890}`, `{"user":1234567890123456789.0e1}`},
		{`{"user":"u1"}`},
		{`{"user":true}`},
	}
	seen := map[string]string{}
	for _, group := range same {
		first, ok := key(group[0])
		if !ok {
			t.Fatalf("UniqueKey(%s) = false, want a key", group[0])
		}
		for _, p := range group[1:] {
			if k, ok := key(p); !ok || k != first {
				t.Errorf("UniqueKey(%s) = %q, %v; want %q as for %s", p, k, ok, first, group[0])
			}
		}
		if other, dup := seen[first]; dup {
			t.Errorf("UniqueKey(%s) = %q, the same as for %s", group[0], first, other)
		}
		seen[first] = group[0]
	}
	for _, p := range []string{`{"user":"1"}`, `{"user":"true"}`, `{"user":-1}`, `{"user":0.1}`} {
		k, ok := key(p)
		if !ok {
			t.Errorf("UniqueKey(%s) = false, want a key", p)
		}
		if other, dup := seen[k]; dup {
			t.Errorf("UniqueKey(%s) = %q, the same as for %s", p, k, other)
		}
		seen[k] = p
	}
	for _, p := range []string{`{}`, `{"user":null}`, `{"user":{"id":1}}`, `{"user":[1]}`} {
		if k, ok := key(p); ok {
			t.Errorf("UniqueKey(%s) = %q, true; want false", p, k)
		}
	}
}
