package starter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/billcycle/billcycle/config"
	"github.com/billcycle/billcycle/internal/testenv"
	"github.com/billcycle/billcycle/workflows"
)

// fakeTemporal records workflow starts and signals, and keeps one run per
// workflow id as the USE_EXISTING conflict policy does.
type fakeTemporal struct {
	mu      sync.Mutex
	starts  []client.StartWorkflowOptions
	args    []any
	runs    map[string]string
	signals []string
	healthy error
}

type fakeRun struct{ id, runID string }

func (r fakeRun) GetID() string                                                           { return r.id }
func (r fakeRun) GetRunID() string                                                        { return r.runID }
func (r fakeRun) GetFirstExecutionRunID() string                                          { return r.runID }
func (r fakeRun) Get(context.Context, any) error                                          { return nil }
func (r fakeRun) GetWithOptions(context.Context, any, client.WorkflowRunGetOptions) error { return nil }

func (f *fakeTemporal) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.runs == nil {
		f.runs = map[string]string{}
	}
	f.starts = append(f.starts, o)
	f.args = append(f.args, args...)
	if _, ok := f.runs[o.ID]; !ok {
		f.runs[o.ID] = "run-" + o.ID
	}
	return fakeRun{o.ID, f.runs[o.ID]}, nil
}

func (f *fakeTemporal) SignalWorkflow(_ context.Context, id, _, name string, _ any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signals = append(f.signals, id+" "+name)
	return nil
}

func (f *fakeTemporal) CheckHealth(context.Context, *client.CheckHealthRequest) (*client.CheckHealthResponse, error) {
	return &client.CheckHealthResponse{}, f.healthy
}

type apiTest struct {
	t   *testing.T
	srv *httptest.Server
	key string
	tc  *fakeTemporal
}

func newAPITest(t *testing.T) *apiTest {
	t.Helper()
	st := testenv.Store(t)
	cfg, err := config.Load(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxBodyBytes = 4096
	tc := &fakeTemporal{}
	srv := httptest.NewServer(New(st, tc, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler())
	t.Cleanup(srv.Close)
	key, _, err := st.CreateAPIKey(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return &apiTest{t: t, srv: srv, key: key, tc: tc}
}

// do sends a request and returns the status and decoded JSON body.
func (a *apiTest) do(method, path, contentType, body string) (int, map[string]any) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		a.t.Fatalf("%s %s: body %q is not JSON", method, path, raw)
	}
	return resp.StatusCode, out
}

func errorOf(body map[string]any) (code, field string) {
	e, _ := body["error"].(map[string]any)
	code, _ = e["code"].(string)
	field, _ = e["field"].(string)
	return code, field
}

func TestSignupStartsOneWorkflowPerCustomer(t *testing.T) {
	a := newAPITest(t)
	body := `{"customer_id":"acme","email":"billing@acme.test","name":"Acme","plan":"pro","metadata":{"segment":"smb"}}`
	status, out := a.do("POST", "/v1/signups", "application/json", body)
	if status != http.StatusCreated {
		t.Fatalf("first signup status = %d (%v), want 201", status, out)
	}
	if out["workflow_id"] != "customer/acme" || out["created"] != true {
		t.Errorf("first signup = %v, want workflow customer/acme, created", out)
	}
	status, out = a.do("POST", "/v1/signups", "application/json", body)
	if status != http.StatusOK || out["created"] != false || out["run_id"] != "run-customer/acme" {
		t.Errorf("repeat signup = %d %v, want 200 with the same run", status, out)
	}
	o := a.tc.starts[0]
	if o.ID != workflows.CustomerWorkflowID("acme") || o.TaskQueue != "billing" || o.WorkflowIDConflictPolicy != enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING {
		t.Errorf("start options = %+v, want id customer/acme on billing with USE_EXISTING", o)
	}
	if v, _ := o.TypedSearchAttributes.GetKeyword(workflows.SearchCustomerID); v != "acme" {
		t.Errorf("CustomerId search attribute = %q, want acme", v)
	}
	if in := a.tc.args[0].(workflows.SignupInput); in.Email != "billing@acme.test" || in.Metadata["segment"] != "smb" {
		t.Errorf("workflow input = %+v", in)
	}
}

func TestSignupErrorsNameTheField(t *testing.T) {
	a := newAPITest(t)
	tests := []struct {
		name, contentType, body string
		status                  int
		code, field             string
	}{
		{"missing id", "application/json", `{"email":"a@b.test"}`, 400, "invalid_request", "customer_id"},
		{"bad id", "application/json", `{"customer_id":"a b","email":"a@b.test"}`, 400, "invalid_request", "customer_id"},
		{"missing email", "application/json", `{"customer_id":"c1"}`, 400, "invalid_request", "email"},
		{"bad email", "application/json", `{"customer_id":"c1","email":"not an email"}`, 400, "invalid_request", "email"},
		{"wrong type", "application/json", `{"customer_id":"c1","email":"a@b.test","metadata":[1]}`, 400, "invalid_request", "metadata"},
		{"unknown field", "application/json", `{"customer_id":"c1","email":"a@b.test","plan_id":"x"}`, 400, "invalid_request", "plan_id"},
		{"malformed", "application/json", `{"customer_id":`, 400, "invalid_request", ""},
		{"empty", "application/json", ``, 400, "invalid_request", ""},
		{"not json", "text/plain", `hello`, 415, "unsupported_media_type", ""},
		{"too large", "application/json", `{"customer_id":"c1","email":"a@b.test","name":"` + strings.Repeat("x", 5000) + `"}`, 413, "body_too_large", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := a.do("POST", "/v1/signups", tt.contentType, tt.body)
			code, field := errorOf(out)
			if status != tt.status || code != tt.code || field != tt.field {
				t.Errorf("POST /v1/signups %s = %d %s field %q, want %d %s field %q (%v)", tt.body, status, code, field, tt.status, tt.code, tt.field, out)
			}
		})
	}
	if len(a.tc.starts) != 0 {
		t.Errorf("bad signups started %d workflows, want 0", len(a.tc.starts))
	}
}

func TestAuthentication(t *testing.T) {
	a := newAPITest(t)
	for name, header := range map[string]string{"none": "", "wrong": "Bearer bc_wrong", "basic": "Basic abc"} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", a.srv.URL+"/v1/signups", bytes.NewReader([]byte(`{}`)))
			if header != "" {
				req.Header.Set("Authorization", header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("Authorization %q: status %d, want 401", header, resp.StatusCode)
			}
		})
	}
}

func TestReadinessNeedsTemporal(t *testing.T) {
	a := newAPITest(t)
	if status, _ := a.do("GET", "/readyz", "", ""); status != 200 {
		t.Errorf("readyz with both up = %d, want 200", status)
	}
	a.tc.healthy = errors.New("connection refused")
	status, out := a.do("GET", "/readyz", "", "")
	if status != 503 || out["checks"].(map[string]any)["temporal"] != "connection refused" {
		t.Errorf("readyz with Temporal down = %d %v, want 503 naming temporal", status, out)
	}
	if status, _ := a.do("GET", "/healthz", "", ""); status != 200 {
		t.Errorf("healthz = %d, want 200", status)
	}
	if status, out := a.do("GET", "/v1/nothing", "", ""); status != 404 {
		t.Errorf("unknown route = %d %v, want 404", status, out)
	}
}
