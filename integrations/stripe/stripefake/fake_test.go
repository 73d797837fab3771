package stripefake_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/billcycle/billcycle/integrations/stripe/stripefake"
)

// post sends a form POST the way stripe-go does and returns status, the replay header and
// the decoded body.
func post(t *testing.T, s *stripefake.Server, path, key string, form url.Values) (int, string, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer sk_test_1")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode %s answer: %v", path, err)
	}
	return resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), body
}

func errType(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["type"].(string)
	return s
}

func TestIdempotencyKeys(t *testing.T) {
	s := stripefake.New(t)
	form := url.Values{"email": {"a@example.com"}, "metadata[billcycle_customer_id]": {"c1"}}

	status, replayed, first := post(t, s, "/v1/customers", "customer/c1", form)
	if status != 200 || replayed != "" {
		t.Fatalf("first POST = %d replayed %q, want 200 not replayed", status, replayed)
	}
	status, replayed, again := post(t, s, "/v1/customers", "customer/c1", form)
	if status != 200 || replayed != "true" || again["id"] != first["id"] {
		t.Errorf("same key again = %d replayed %q id %v, want 200 replayed id %v", status, replayed, again["id"], first["id"])
	}
	changed := url.Values{"email": {"b@example.com"}}
	if status, _, body := post(t, s, "/v1/customers", "customer/c1", changed); status != 400 || errType(body) != "idempotency_error" {
		t.Errorf("same key, other params = %d %v, want 400 idempotency_error", status, body)
	}
	if _, _, other := post(t, s, "/v1/customers", "customer/c2", form); other["id"] == first["id"] {
		t.Errorf("other key gave the same customer %v", other["id"])
	}
	if n := len(s.Customers()); n != 2 {
		t.Errorf("Customers() = %d, want 2", n)
	}
	cs := s.Customers()
	if cs[0].Email != "a@example.com" || cs[0].Metadata["billcycle_customer_id"] != "c1" {
		t.Errorf("customer 0 = %+v, want a@example.com with metadata c1", cs[0])
	}
}

func TestInjectedFaultIsNotStored(t *testing.T) {
	s := stripefake.New(t)
	form := url.Values{"email": {"a@example.com"}}
	s.FailNext("/v1/customers", 500)
	if status, _, body := post(t, s, "/v1/customers", "k", form); status != 500 || errType(body) != "api_error" {
		t.Errorf("faulted POST = %d %v, want 500 api_error", status, body)
	}
	if status, replayed, _ := post(t, s, "/v1/customers", "k", form); status != 200 || replayed != "" {
		t.Errorf("retry after fault = %d replayed %q, want a fresh 200", status, replayed)
	}
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[0].Status != 500 || reqs[1].Status != 200 || reqs[1].IdempotencyKey != "k" ||
		reqs[1].Form.Get("email") != "a@example.com" {
		t.Errorf("Requests() = %+v, want the 500 then the 200 with key k and the form", reqs)
	}
}

func TestInvoiceRules(t *testing.T) {
	s := stripefake.New(t)
	_, _, cus := post(t, s, "/v1/customers", "", url.Values{})
	cid := cus["id"].(string)
	if status, _, body := post(t, s, "/v1/invoices", "", url.Values{"customer": {"cus_nope"}}); status != 400 || errType(body) != "invalid_request_error" {
		t.Errorf("invoice for unknown customer = %d %v, want 400", status, body)
	}
	_, _, inv := post(t, s, "/v1/invoices", "", url.Values{"customer": {cid}, "currency": {"usd"}, "auto_advance": {"false"}})
	id := inv["id"].(string)
	if inv["status"] != "draft" {
		t.Errorf("new invoice status = %v, want draft", inv["status"])
	}
	post(t, s, "/v1/invoiceitems", "", url.Values{"customer": {cid}, "invoice": {id}, "amount": {"1234"}, "currency": {"usd"}})
	if status, _, fin := post(t, s, "/v1/invoices/"+id+"/finalize", "", nil); status != 200 || fin["status"] != "open" || fin["total"] != float64(1234) {
		t.Errorf("finalize = %d %v/%v, want 200 open 1234", status, fin["status"], fin["total"])
	}
	if status, _, _ := post(t, s, "/v1/invoiceitems", "", url.Values{"customer": {cid}, "invoice": {id}, "amount": {"1"}}); status != 400 {
		t.Errorf("item on open invoice = %d, want 400", status)
	}
	if status, _, _ := post(t, s, "/v1/invoices/"+id+"/finalize", "", nil); status != 400 {
		t.Errorf("second finalize = %d, want 400", status)
	}
	if err := s.SetInvoiceStatus(id, "paid"); err != nil {
		t.Fatal(err)
	}
	invs := s.Invoices()
	if len(invs) != 1 || invs[0].Status != "paid" || invs[0].AmountPaid != 1234 || len(invs[0].Items) != 1 || invs[0].Number == "" {
		t.Errorf("Invoices() = %+v, want one paid invoice of 1234 with a number and one item", invs)
	}
}
