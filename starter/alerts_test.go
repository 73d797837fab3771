package starter

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/config"
	"github.com/billcycle/billcycle/internal/testenv"
	"github.com/billcycle/billcycle/store"
)

// updatingTemporal is fakeTemporal plus workflow updates: it records them and
// answers NotFound for workflows it never started, as Temporal does.
type updatingTemporal struct {
	*fakeTemporal
	umu     sync.Mutex
	updates []client.UpdateWorkflowOptions
}

type doneUpdate struct{ id string }

func (h doneUpdate) WorkflowID() string             { return h.id }
func (h doneUpdate) RunID() string                  { return "run-" + h.id }
func (h doneUpdate) UpdateID() string               { return "u1" }
func (h doneUpdate) Get(context.Context, any) error { return nil }

func (f *updatingTemporal) UpdateWorkflow(_ context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	f.fakeTemporal.mu.Lock()
	_, running := f.runs[o.WorkflowID]
	f.fakeTemporal.mu.Unlock()
	if !running {
		return nil, serviceerror.NewNotFound("workflow not found for ID: " + o.WorkflowID)
	}
	f.umu.Lock()
	defer f.umu.Unlock()
	f.updates = append(f.updates, o)
	return doneUpdate{o.WorkflowID}, nil
}

func (f *updatingTemporal) sent() []client.UpdateWorkflowOptions {
	f.umu.Lock()
	defer f.umu.Unlock()
	return append([]client.UpdateWorkflowOptions(nil), f.updates...)
}

// newAlertAPITest is newAPITest with a Temporal fake that takes updates, the
// store exposed for seeding, a customer "acme" signed up (its workflow runs)
// and a meter "calls".
func newAlertAPITest(t *testing.T) (*apiTest, *store.Store, *updatingTemporal) {
	t.Helper()
	st := testenv.Store(t)
	cfg, err := config.Load(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	tc := &updatingTemporal{fakeTemporal: &fakeTemporal{}}
	srv := httptest.NewServer(New(st, tc, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler())
	t.Cleanup(srv.Close)
	ctx := context.Background()
	key, _, err := st.CreateAPIKey(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, checked, err := st.MeterKnown(ctx, "calls"); err != nil {
		t.Fatal(err)
	} else if !checked {
		// The metering migration is not in this tree yet: stand in for it.
		if _, err := st.Pool().Exec(ctx, `CREATE TABLE meters (slug text PRIMARY KEY, definition jsonb NOT NULL, archived_at timestamptz)`); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Pool().Exec(ctx, `INSERT INTO meters (slug, definition) VALUES ('calls', '{}')`); err != nil {
		t.Fatal(err)
	}
	a := &apiTest{t: t, srv: srv, key: key, tc: tc.fakeTemporal}
	if status, out := a.do("POST", "/v1/signups", "application/json", `{"customer_id":"acme","email":"billing@acme.test","metadata":{"plan":"pro"}}`); status != http.StatusCreated {
		t.Fatalf("signup = %d %v", status, out)
	}
	return a, st, tc
}

func TestCreateAlert(t *testing.T) {
	a, st, tc := newAlertAPITest(t)
	if _, _, err := st.CreateCustomer(context.Background(), store.Customer{ID: "idle", Email: "idle@example.test"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body    string
		workflow      string
		cooldown      string
		wantUpdateFor string
	}{
		{"one customer", `{"meter":"calls","customer_id":"acme","threshold":1000,"actions":["email_customer"]}`, "updated", "", "customer/acme"},
		{"rolling", `{"meter":"calls","customer_id":"acme","threshold":"100","direction":"below","window":"24h","actions":["notify_sales"]}`, "updated", "24h0m0s", "customer/acme"},
		{"own cooldown", `{"meter":"calls","customer_id":"acme","threshold":5,"window":"1h","cooldown":"2h","actions":["revoke_access"]}`, "updated", "2h0m0s", "customer/acme"},
		{"no workflow", `{"meter":"calls","customer_id":"idle","threshold":1,"actions":["email_customer"]}`, "not_running", "", ""},
		{"all customers", `{"meter":"calls","customer_filter":{"plan":"!enterprise"},"threshold":1,"actions":["notify_sales"]}`, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(tc.sent())
			status, out := a.do("POST", "/v1/alerts", "application/json", tt.body)
			if status != http.StatusCreated {
				t.Fatalf("POST /v1/alerts %s = %d %v, want 201", tt.body, status, out)
			}
			id, _ := out["id"].(string)
			if !strings.HasPrefix(id, "alert_") || out["created_at"] == nil || out["direction"] == "" {
				t.Errorf("created alert = %v, want an alert_ id, a creation time and a direction", out)
			}
			if w, _ := out["workflow"].(string); w != tt.workflow {
				t.Errorf("workflow = %q, want %q", w, tt.workflow)
			}
			if c, _ := out["cooldown"].(string); c != tt.cooldown {
				t.Errorf("cooldown = %q, want %q", c, tt.cooldown)
			}
			ups := tc.sent()[before:]
			if tt.wantUpdateFor == "" {
				if len(ups) != 0 {
					t.Errorf("sent %d updates, want none", len(ups))
				}
				return
			}
			if len(ups) != 1 || ups[0].WorkflowID != tt.wantUpdateFor || ups[0].UpdateName != "upsert-alert" {
				t.Fatalf("updates = %+v, want one upsert-alert to %s", ups, tt.wantUpdateFor)
			}
			if sentAlert, ok := ups[0].Args[0].(billing.Alert); !ok || sentAlert.ID != id {
				t.Errorf("update carried %+v, want alert %s", ups[0].Args, id)
			}
			got, err := st.Alert(context.Background(), id)
			if err != nil || got.Meter != "calls" {
				t.Errorf("stored alert = %+v, %v", got, err)
			}
		})
	}
}

func TestCreateAlertErrorsNameTheField(t *testing.T) {
	a, _, _ := newAlertAPITest(t)
	tests := []struct {
		name, body  string
		status      int
		code, field string
	}{
		{"no threshold", `{"meter":"calls","actions":["email_customer"]}`, 400, "invalid_request", "threshold"},
		{"bad threshold", `{"meter":"calls","threshold":"lots","actions":["email_customer"]}`, 400, "invalid_request", "threshold"},
		{"zero threshold", `{"meter":"calls","threshold":0,"actions":["email_customer"]}`, 400, "invalid_request", "threshold"},
		{"no meter", `{"threshold":1,"actions":["email_customer"]}`, 400, "invalid_request", "meter"},
		{"bad meter slug", `{"meter":"API Calls","threshold":1,"actions":["email_customer"]}`, 400, "invalid_request", "meter"},
		{"unknown meter", `{"meter":"tokens","threshold":1,"actions":["email_customer"]}`, 400, "invalid_request", "meter"},
		{"bad direction", `{"meter":"calls","threshold":1,"direction":"sideways","actions":["email_customer"]}`, 400, "invalid_request", "direction"},
		{"bad window", `{"meter":"calls","threshold":1,"window":"1 day","actions":["email_customer"]}`, 400, "invalid_request", "window"},
		{"tiny window", `{"meter":"calls","threshold":1,"window":"5s","actions":["email_customer"]}`, 400, "invalid_request", "window"},
		{"cooldown without window", `{"meter":"calls","threshold":1,"cooldown":"1h","actions":["email_customer"]}`, 400, "invalid_request", "cooldown"},
		{"no actions", `{"meter":"calls","threshold":1}`, 400, "invalid_request", "actions"},
		{"unknown action", `{"meter":"calls","threshold":1,"actions":["email_customer","page_oncall"]}`, 400, "invalid_request", "actions[1]"},
		{"repeated action", `{"meter":"calls","threshold":1,"actions":["email_customer","email_customer"]}`, 400, "invalid_request", "actions[1]"},
		{"unknown customer", `{"meter":"calls","customer_id":"ghost","threshold":1,"actions":["email_customer"]}`, 400, "invalid_request", "customer_id"},
		{"filter on one customer", `{"meter":"calls","customer_id":"acme","customer_filter":{"plan":"pro"},"threshold":1,"actions":["email_customer"]}`, 400, "invalid_request", "customer_filter"},
		{"unknown field", `{"meter":"calls","threshold":1,"actions":["email_customer"],"limit":3}`, 400, "invalid_request", "limit"},
		{"not json", `meter=calls`, 400, "invalid_request", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := a.do("POST", "/v1/alerts", "application/json", tt.body)
			code, field := errorOf(out)
			if status != tt.status || code != tt.code || field != tt.field {
				t.Errorf("POST /v1/alerts %s = %d %s field %q, want %d %s field %q (%v)", tt.body, status, code, field, tt.status, tt.code, tt.field, out)
			}
		})
	}
	if status, out := a.do("GET", "/v1/alerts", "", ""); status != 200 || len(out["alerts"].([]any)) != 0 {
		t.Errorf("after only bad requests GET /v1/alerts = %d %v, want no alerts", status, out)
	}
}

func TestAlertLimitIs409(t *testing.T) {
	a, _, _ := newAlertAPITest(t)
	body := `{"meter":"calls","customer_id":"acme","threshold":%d,"actions":["email_customer"]}`
	var first string
	for i := range billing.MaxAlertsPerMeter {
		status, out := a.do("POST", "/v1/alerts", "application/json", fmt.Sprintf(body, i+1))
		if status != http.StatusCreated {
			t.Fatalf("alert %d = %d %v", i+1, status, out)
		}
		if i == 0 {
			first = out["id"].(string)
		}
	}
	status, out := a.do("POST", "/v1/alerts", "application/json", fmt.Sprintf(body, 99))
	if code, field := errorOf(out); status != http.StatusConflict || code != "alert_limit" || field != "meter" {
		t.Errorf("alert %d = %d %v, want 409 alert_limit on meter", billing.MaxAlertsPerMeter+1, status, out)
	}
	if status, out := a.do("POST", "/v1/alerts/"+first+"/archive", "", ""); status != 200 {
		t.Fatalf("archive = %d %v", status, out)
	}
	if status, out := a.do("POST", "/v1/alerts", "application/json", fmt.Sprintf(body, 99)); status != http.StatusCreated {
		t.Errorf("alert after archiving one = %d %v, want 201", status, out)
	}
}

func TestListGetAndArchiveAlerts(t *testing.T) {
	a, _, tc := newAlertAPITest(t)
	create := func(body string) string {
		status, out := a.do("POST", "/v1/alerts", "application/json", body)
		if status != http.StatusCreated {
			t.Fatalf("POST %s = %d %v", body, status, out)
		}
		return out["id"].(string)
	}
	own := create(`{"meter":"calls","customer_id":"acme","threshold":10,"actions":["email_customer"]}`)
	all := create(`{"meter":"calls","threshold":20,"actions":["notify_sales"]}`)

	ids := func(path string) []string {
		status, out := a.do("GET", path, "", "")
		if status != 200 {
			t.Fatalf("GET %s = %d %v", path, status, out)
		}
		var got []string
		for _, x := range out["alerts"].([]any) {
			got = append(got, x.(map[string]any)["id"].(string))
		}
		return got
	}
	tests := []struct {
		path string
		want []string
	}{
		{"/v1/alerts", []string{own, all}},
		{"/v1/alerts?customer_id=acme", []string{own}},
		{"/v1/alerts?meter=calls", []string{own, all}},
		{"/v1/alerts?meter=tokens", nil},
	}
	for _, tt := range tests {
		if got := ids(tt.path); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("GET %s = %v, want %v", tt.path, got, tt.want)
		}
	}
	status, out := a.do("GET", "/v1/alerts/"+own, "", "")
	if status != 200 || out["threshold"] != "10" || out["customer_id"] != "acme" {
		t.Errorf("GET alert = %d %v, want threshold 10 for acme", status, out)
	}
	if status, _ := a.do("GET", "/v1/alerts/alert_nope", "", ""); status != 404 {
		t.Errorf("GET unknown alert = %d, want 404", status)
	}
	before := len(tc.sent())
	for range 2 {
		status, out := a.do("POST", "/v1/alerts/"+own+"/archive", "", "")
		if status != 200 || out["archived"] != true {
			t.Errorf("archive = %d %v, want 200 archived", status, out)
		}
	}
	if ups := tc.sent()[before:]; len(ups) != 2 || !ups[0].Args[0].(billing.Alert).Archived {
		t.Errorf("archive updates = %+v, want the archived alert sent to the workflow", ups)
	}
	if got := ids("/v1/alerts?customer_id=acme"); len(got) != 0 {
		t.Errorf("live alerts of acme after archive = %v, want none", got)
	}
	if got := ids("/v1/alerts?customer_id=acme&include_archived=true"); len(got) != 1 || got[0] != own {
		t.Errorf("all alerts of acme = %v, want [%s]", got, own)
	}
	if status, out := a.do("GET", "/v1/alerts?include_archived=maybe", "", ""); status != 400 {
		t.Errorf("include_archived=maybe = %d %v, want 400", status, out)
	}
	if status, _ := a.do("POST", "/v1/alerts/alert_nope/archive", "", ""); status != 404 {
		t.Errorf("archive unknown alert = %d, want 404", status)
	}
}

func TestNoticesShowTheOutbox(t *testing.T) {
	a, st, _ := newAlertAPITest(t)
	ctx := context.Background()
	for _, n := range []store.Notice{
		{DedupeKey: "alert/1", CustomerID: "acme", Kind: "alert", Channel: store.ChannelOutbox, Recipient: "billing@acme.test", Subject: "Usage alert", Body: "1,000 calls"},
		{DedupeKey: "invoice/1", CustomerID: "acme", Kind: "invoice", Channel: store.ChannelOutbox, Subject: "Invoice", Body: "b"},
	} {
		if _, _, err := st.ClaimNotice(ctx, n); err != nil {
			t.Fatal(err)
		}
		if err := st.FinishNotice(ctx, n.DedupeKey, store.NoticeOutbox, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	status, out := a.do("GET", "/v1/notices?customer_id=acme&kind=alert", "", "")
	list, _ := out["notices"].([]any)
	if status != 200 || len(list) != 1 {
		t.Fatalf("GET /v1/notices = %d %v, want one alert notice", status, out)
	}
	n := list[0].(map[string]any)
	if n["dedupe_key"] != "alert/1" || n["status"] != "outbox" || n["recipient"] != "billing@acme.test" || n["subject"] != "Usage alert" || n["body"] != "1,000 calls" {
		t.Errorf("notice = %v, want the outbox email as recorded", n)
	}
	if status, out := a.do("GET", "/v1/notices?customer_id=acme", "", ""); status != 200 || len(out["notices"].([]any)) != 2 {
		t.Errorf("all notices of acme = %d %v, want 2", status, out)
	}
	if status, out := a.do("GET", "/v1/notices?limit=0", "", ""); status != 400 {
		t.Errorf("limit=0 = %d %v, want 400", status, out)
	}
}

func TestCustomerAccess(t *testing.T) {
	a, st, _ := newAlertAPITest(t)
	status, out := a.do("GET", "/v1/customers/acme/access", "", "")
	if status != 200 || out["customer_id"] != "acme" || out["access"] != "granted" || out["changed_at"] != nil {
		t.Errorf("access of a new customer = %d %v, want granted, never changed", status, out)
	}
	if _, err := st.SetAccess(context.Background(), "acme", false, "usage alert"); err != nil {
		t.Fatal(err)
	}
	status, out = a.do("GET", "/v1/customers/acme/access", "", "")
	if status != 200 || out["access"] != "revoked" || out["reason"] != "usage alert" || out["changed_at"] == nil {
		t.Errorf("access after revoke = %d %v, want revoked for usage alert with a time", status, out)
	}
	if status, _ := a.do("GET", "/v1/customers/ghost/access", "", ""); status != 404 {
		t.Errorf("access of unknown customer = %d, want 404", status)
	}
}
