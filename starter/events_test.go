package starter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/config"
	"github.com/billcycle/billcycle/internal/testenv"
	"github.com/billcycle/billcycle/store"
	"github.com/billcycle/billcycle/workflows"
)

// signalRecorder is the fake Temporal of starter_test.go, also keeping each
// signal's payload; signalErr makes every signal fail.
type signalRecorder struct {
	*fakeTemporal
	mu        sync.Mutex
	payloads  []any
	signalErr error
}

func (f *signalRecorder) SignalWorkflow(ctx context.Context, id, runID, name string, arg any) error {
	f.mu.Lock()
	f.payloads = append(f.payloads, arg)
	err := f.signalErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return f.fakeTemporal.SignalWorkflow(ctx, id, runID, name, arg)
}

type meteringTest struct {
	*apiTest
	st  *store.Store
	sig *signalRecorder
}

func newMeteringTest(t *testing.T) *meteringTest {
	t.Helper()
	st := testenv.Store(t)
	cfg, err := config.Load(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxBodyBytes = 4 << 20
	sig := &signalRecorder{fakeTemporal: &fakeTemporal{}}
	srv := httptest.NewServer(New(st, sig, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler())
	t.Cleanup(srv.Close)
	key, _, err := st.CreateAPIKey(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return &meteringTest{apiTest: &apiTest{t: t, srv: srv, key: key, tc: sig.fakeTemporal}, st: st, sig: sig}
}

func (m *meteringTest) createMeter(body string) {
	m.t.Helper()
	if status, out := m.do("POST", "/v1/meters", "application/json", body); status != http.StatusCreated {
		m.t.Fatalf("POST /v1/meters %s = %d %v, want 201", body, status, out)
	}
}

func ts(d time.Duration) string { return time.Now().UTC().Add(d).Format(time.RFC3339Nano) }

func rejections(out map[string]any) []string {
	var got []string
	list, _ := out["rejected"].([]any)
	for _, r := range list {
		r := r.(map[string]any)
		got = append(got, fmt.Sprintf("%v:%v", r["index"], r["field"]))
	}
	return got
}

const callsMeter = `{"slug":"calls","name":"API calls","event_name":"api_call","aggregation":"count","unit":"calls",
	"filter":{"logic":"and","conditions":[{"property":"response.status","operator":"lt","value":500}]}}`
const tokensMeter = `{"slug":"tokens","name":"Tokens","event_name":"api_call","aggregation":"sum","property":"tokens","unit":"tokens"}`

func TestIngestStoresValidEventsAndReportsTheRest(t *testing.T) {
	a := newMeteringTest(t)
	a.createMeter(callsMeter)
	a.createMeter(tokensMeter)
	batch := fmt.Sprintf(`{"events":[
		{"id":"e1","customer_id":"acme","name":"api_call","timestamp":%q,"properties":{"response":{"status":200},"tokens":10}},
		{"id":"e2","name":"api_call","timestamp":%q},
		{"id":"e3","customer_id":"acme","name":"api_call","timestamp":%q,"properties":{"response":{"status":503},"tokens":2.5}},
		{"id":"e4","customer_id":"acme","name":"api_call","timestamp":%q},
		{"id":"e5","customer_id":"acme","name":"api_call","timestamp":%q},
		{"id":"e1","customer_id":"acme","name":"api_call","timestamp":%q,"properties":{"tokens":1000}}
	]}`, ts(-time.Minute), ts(-time.Minute), ts(-2*time.Minute), ts(-36*24*time.Hour), ts(10*time.Minute), ts(-time.Minute))
	status, out := a.do("POST", "/v1/events", "application/json", batch)
	got := rejections(out)
	if status != http.StatusMultiStatus || out["accepted"] != 2.0 || out["duplicates"] != 1.0 || strings.Join(got, " ") != "1:customer_id 3:timestamp 4:timestamp" {
		t.Fatalf("POST /v1/events = %d %v, want 207, 2 accepted, 1 duplicate, rejected 1:customer_id 3:timestamp 4:timestamp", status, out)
	}
	// The retry of the whole batch stores nothing new.
	status, out = a.do("POST", "/v1/events", "application/json", batch)
	if status != http.StatusMultiStatus || out["accepted"] != 0.0 || out["duplicates"] != 3.0 {
		t.Errorf("retried batch = %d %v, want 207 with 0 accepted, 3 duplicates", status, out)
	}
	from := time.Now().UTC().Add(-time.Hour).Truncate(time.Hour).Format(time.RFC3339)
	to := time.Now().UTC().Add(2 * time.Hour).Truncate(time.Hour).Format(time.RFC3339)
	for meter, want := range map[string]string{"calls": "1", "tokens": "12.5"} {
		status, out := a.do("GET", "/v1/meters/"+meter+"/usage?customer_id=acme&window=hour&from="+from+"&to="+to, "", "")
		if status != 200 || out["total"] != want {
			t.Errorf("usage of %s = %d %v, want total %s", meter, status, out, want)
		}
		if s, _ := out["series"].([]any); len(s) != 3 {
			t.Errorf("usage of %s has %d hourly points, want 3", meter, len(s))
		}
	}
}

func TestIngestCloudEvents(t *testing.T) {
	a := newMeteringTest(t)
	a.createMeter(tokensMeter)
	batch := fmt.Sprintf(`[
		{"specversion":"1.0","id":"ce1","source":"gateway","type":"api_call","subject":"acme","time":%q,"data":{"tokens":7}},
		{"specversion":"1.0","id":"ce2","source":"gateway","type":"api_call","time":%q,"data":{"tokens":7}},
		{"specversion":"1.0","id":"ce3","source":"gateway","type":"api_call","subject":"acme","time":%q,"data":{"tokens":"x"}}
	]`, ts(-time.Minute), ts(-time.Minute), ts(-time.Minute))
	status, out := a.do("POST", "/v1/events", "application/cloudevents-batch+json", batch)
	if status != http.StatusMultiStatus || out["accepted"] != 2.0 || strings.Join(rejections(out), " ") != "1:subject" {
		t.Fatalf("POST CloudEvents batch = %d %v, want 207, 2 accepted, rejected 1:subject", status, out)
	}
	one := fmt.Sprintf(`{"specversion":"1.0","id":"ce4","source":"gateway","type":"api_call","subject":"acme","time":%q,"data":{"tokens":3}}`, ts(-time.Minute))
	if status, out := a.do("POST", "/v1/events", "application/cloudevents+json; charset=utf-8", one); status != 200 || out["accepted"] != 1.0 {
		t.Errorf("POST one CloudEvent = %d %v, want 200 with 1 accepted", status, out)
	}
	totals, err := a.st.MeterTotals(context.Background(), "acme", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil || !totals["tokens"].Equal(decimal.NewFromInt(10)) {
		t.Errorf("MeterTotals after CloudEvents = %v, %v; want tokens 10 (a string value does not sum)", totals, err)
	}
}

func TestIngestRefusesWholeRequests(t *testing.T) {
	a := newMeteringTest(t)
	ev := fmt.Sprintf(`{"id":"x%%d","customer_id":"acme","name":"api_call","timestamp":%q}`, ts(-time.Minute))
	var many []string
	for i := range MaxBatchEvents + 1 {
		many = append(many, fmt.Sprintf(ev, i))
	}
	tests := []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"wrong content type", "text/plain", `[]`, 415, "unsupported_media_type"},
		{"no content type", "", `[]`, 415, "unsupported_media_type"},
		{"not json", "application/json", `{"events":`, 400, "invalid_request"},
		{"too many events", "application/json", "[" + strings.Join(many, ",") + "]", 400, "invalid_request"},
		{"too large", "application/json", `[{"id":"` + strings.Repeat("x", 5<<20) + `"}]`, 413, "body_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := a.do("POST", "/v1/events", tt.contentType, tt.body)
			if code, _ := errorOf(out); status != tt.status || code != tt.code {
				t.Errorf("POST /v1/events (%s) = %d %s, want %d %s", tt.name, status, code, tt.status, tt.code)
			}
		})
	}
	status, out := a.do("POST", "/v1/events", "application/json", "["+strings.Join(many[:MaxBatchEvents], ",")+"]")
	if status != 200 || out["accepted"] != float64(MaxBatchEvents) {
		t.Errorf("POST of exactly %d events = %d %v, want all accepted", MaxBatchEvents, status, out["accepted"])
	}
}

func TestWatchLevelCrossingSignalsOnce(t *testing.T) {
	a := newMeteringTest(t)
	a.createMeter(tokensMeter)
	from := time.Now().UTC().Add(-24 * time.Hour)
	if err := a.st.SetWatchLevels(context.Background(), "acme", from, map[string]decimal.Decimal{"tokens": decimal.NewFromInt(100)}); err != nil {
		t.Fatal(err)
	}
	// post sends one event and waits for compaction, which checks the
	// watch levels (the background compactor may have run it already).
	post := func(id string, tokens int) {
		t.Helper()
		body := fmt.Sprintf(`[{"id":%q,"customer_id":"acme","name":"api_call","timestamp":%q,"properties":{"tokens":%d}}]`, id, ts(-time.Minute), tokens)
		if status, out := a.do("POST", "/v1/events", "application/json", body); status != 200 {
			t.Fatalf("POST /v1/events = %d %v", status, out)
		}
		if _, err := a.st.CompactRollups(context.Background()); err != nil {
			t.Fatalf("CompactRollups: %v", err)
		}
	}
	signals := func() ([]string, []any) {
		a.tc.mu.Lock()
		defer a.tc.mu.Unlock()
		a.sig.mu.Lock()
		defer a.sig.mu.Unlock()
		return slices.Clone(a.tc.signals), slices.Clone(a.sig.payloads)
	}
	post("w1", 60)
	if got, _ := signals(); len(got) != 0 {
		t.Fatalf("signals below the level = %v, want none", got)
	}
	post("w2", 40) // total 100 reaches the level
	post("w3", 40)
	post("w2", 40) // a duplicate changes nothing
	got, payloads := signals()
	if want := workflows.CustomerWorkflowID("acme") + " " + workflows.SignalUsageCrossed; len(got) != 1 || got[0] != want {
		t.Fatalf("signals = %v, want exactly [%s]", got, want)
	}
	if p, ok := payloads[0].(workflows.UsageCrossed); !ok || p.Meter != "tokens" {
		t.Errorf("signal payload = %#v, want UsageCrossed{Meter: tokens}", payloads[0])
	}
	// A failing signal does not fail the ingest.
	if err := a.st.SetWatchLevels(context.Background(), "acme", from, map[string]decimal.Decimal{"tokens": decimal.NewFromInt(150)}); err != nil {
		t.Fatal(err)
	}
	a.sig.mu.Lock()
	a.sig.signalErr = errors.New("temporal is down")
	a.sig.mu.Unlock()
	post("w4", 10)
	if _, payloads := signals(); len(payloads) != 2 {
		t.Errorf("signal attempts = %d, want 2", len(payloads))
	}
}

// TestWatchLevelCrossingSignalsWithinSeconds relies on the background
// compactor alone: the nudge arrives without anyone calling CompactRollups.
func TestWatchLevelCrossingSignalsWithinSeconds(t *testing.T) {
	a := newMeteringTest(t)
	a.createMeter(tokensMeter)
	from := time.Now().UTC().Add(-time.Hour)
	if err := a.st.SetWatchLevels(context.Background(), "acme", from, map[string]decimal.Decimal{"tokens": decimal.NewFromInt(50)}); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`[{"id":"s1","customer_id":"acme","name":"api_call","timestamp":%q,"properties":{"tokens":70}}]`, ts(-time.Minute))
	if status, out := a.do("POST", "/v1/events", "application/json", body); status != 200 {
		t.Fatalf("POST /v1/events = %d %v", status, out)
	}
	start := time.Now()
	for {
		a.tc.mu.Lock()
		n := len(a.tc.signals)
		a.tc.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("signals %v after %v, want one usage-crossed signal", n, time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMetersAPI(t *testing.T) {
	a := newMeteringTest(t)
	a.createMeter(callsMeter)
	status, out := a.do("POST", "/v1/meters", "application/json", callsMeter)
	if status != 200 || out["slug"] != "calls" {
		t.Errorf("repeated POST /v1/meters = %d %v, want 200 with the meter", status, out)
	}
	tests := []struct {
		name, body  string
		status      int
		code, field string
	}{
		{"other definition", strings.Replace(callsMeter, `"lt"`, `"lte"`, 1), 409, "conflict", "slug"},
		{"gt on a string", `{"slug":"s","name":"S","event_name":"e","aggregation":"count","filter":{"conditions":[{"property":"p","operator":"gt","value":"abc"}]}}`,
			400, "invalid_request", "filter.conditions[0].value"},
		{"sum without property", `{"slug":"s","name":"S","event_name":"e","aggregation":"sum"}`, 400, "invalid_request", "property"},
		{"bad slug", `{"slug":"S S","name":"S","event_name":"e","aggregation":"count"}`, 400, "invalid_request", "slug"},
		{"unknown field", `{"slug":"s","name":"S","event_name":"e","aggregation":"count","agg":1}`, 400, "invalid_request", "agg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := a.do("POST", "/v1/meters", "application/json", tt.body)
			if code, field := errorOf(out); status != tt.status || code != tt.code || field != tt.field {
				t.Errorf("POST /v1/meters = %d %s field %q, want %d %s field %q (%v)", status, code, field, tt.status, tt.code, tt.field, out)
			}
		})
	}
	if status, out := a.do("GET", "/v1/meters/calls", "", ""); status != 200 || out["aggregation"] != "count" || out["filter"] == nil {
		t.Errorf("GET /v1/meters/calls = %d %v", status, out)
	}
	if status, _ := a.do("GET", "/v1/meters/nope", "", ""); status != 404 {
		t.Errorf("GET unknown meter = %d, want 404", status)
	}
	if status, out := a.do("POST", "/v1/meters/calls/archive", "", ""); status != 200 || out["archived_at"] == nil {
		t.Errorf("archive = %d %v, want 200 with archived_at", status, out)
	}
	status, out = a.do("GET", "/v1/meters", "", "")
	if list, _ := out["meters"].([]any); status != 200 || len(list) != 1 || list[0].(map[string]any)["archived_at"] == nil {
		t.Errorf("GET /v1/meters = %d %v, want the archived meter listed", status, out)
	}
	if status, _ := a.do("GET", "/v1/meters/calls/usage?customer_id=a&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&window=week", "", ""); status != 400 {
		t.Errorf("usage with window=week = %d, want 400", status)
	}
}

func TestListEventsPages(t *testing.T) {
	a := newMeteringTest(t)
	var evs []string
	for i := range 25 {
		evs = append(evs, fmt.Sprintf(`{"id":"p%02d","customer_id":"acme","name":"n","timestamp":%q,"properties":{"i":%d}}`, i, ts(-time.Duration(30-i)*time.Minute), i))
	}
	if status, out := a.do("POST", "/v1/events", "application/json", "["+strings.Join(evs, ",")+"]"); status != 200 {
		t.Fatalf("POST /v1/events = %d %v", status, out)
	}
	var ids []string
	cursor := ""
	for range 10 {
		status, out := a.do("GET", "/v1/events?customer_id=acme&limit=10&cursor="+cursor, "", "")
		if status != 200 {
			t.Fatalf("GET /v1/events = %d %v", status, out)
		}
		for _, e := range out["events"].([]any) {
			ids = append(ids, e.(map[string]any)["id"].(string))
		}
		next, _ := out["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	var want []string
	for i := range 25 {
		want = append(want, fmt.Sprintf("p%02d", i))
	}
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("paged ids = %v, want %v", ids, want)
	}
	status, out := a.do("GET", "/v1/events?customer_id=acme&limit=1", "", "")
	raw, _ := json.Marshal(out["events"])
	if status != 200 || !strings.Contains(string(raw), `"properties":{"i":0}`) {
		t.Errorf("first event = %s, want its properties as sent", raw)
	}
	for _, q := range []string{"", "customer_id=acme&from=yesterday", "customer_id=acme&limit=0", "customer_id=acme&cursor=zz"} {
		if status, _ := a.do("GET", "/v1/events?"+q, "", ""); status != 400 {
			t.Errorf("GET /v1/events?%s = %d, want 400", q, status)
		}
	}
}
