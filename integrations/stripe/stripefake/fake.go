// Package stripefake is a stateful, recording fake of the Stripe endpoints billcycle uses
// (customers, invoices, invoice items), for logic tests that stripe-mock's stateless fixtures
// cannot serve.
//
// Like Stripe it honours the Idempotency-Key header: a POST whose key was seen before gets the
// stored response again (with header Idempotent-Replayed: true) and creates nothing; the same
// key with other parameters or another path is a 400 idempotency_error; a key whose first
// request is still running is a 409. Responses of requests that failed parameter validation,
// and injected faults, are not stored, matching Stripe's "saved once the endpoint starts
// executing". ForgetIdempotencyKeys models Stripe pruning keys after 24 hours.
//
// Supported: POST /v1/customers, GET /v1/customers[?email=], GET /v1/customers/{id},
// POST /v1/invoices, GET /v1/invoices[?customer=&created[gte]=], GET /v1/invoices/{id},
// GET /v1/invoices/{id}/lines, POST /v1/invoices/{id}/{finalize,void,mark_uncollectible,pay},
// POST /v1/invoiceitems. Lists return everything in one page, newest first.
package stripefake

import (
	"github.com/shopspring/decimal"

	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Customer is a customer as the fake holds it.
type Customer struct {
	ID       string
	Email    string
	Name     string
	Metadata map[string]string
}

// Item is an invoice item as the fake holds it.
type Item struct {
	ID          string
	Customer    string
	Invoice     string // empty while pending
	Currency    string
	Amount      int64
	Description string
	Metadata    map[string]string
}

// Invoice is an invoice as the fake holds it, with its items in creation order.
type Invoice struct {
	ID               string
	Customer         string
	Status           string
	Number           string
	Currency         string
	CollectionMethod string
	DaysUntilDue     int64
	AutoAdvance      bool
	Description      string
	Metadata         map[string]string
	Items            []Item
	AmountPaid       int64
	Created          int64
}

// Total is the sum of the invoice's item amounts.
func (inv Invoice) Total() int64 {
	var t int64
	for _, it := range inv.Items {
		t += it.Amount
	}
	return t
}

// Request is one request the fake received.
type Request struct {
	Method         string
	Path           string
	IdempotencyKey string
	// Form holds the decoded form (POST body, or query for GET) with Stripe's nested keys
	// as sent, such as "metadata[billcycle_invoice_id]".
	Form url.Values
	// Status is the HTTP status the fake answered with.
	Status int
	// Replayed reports that the answer was a stored idempotent response.
	Replayed bool
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL to give the Stripe client (no /v1).
	URL string

	srv *httptest.Server

	mu        sync.Mutex
	seq       int
	numbers   int
	customers []*Customer
	invoices  []*Invoice
	items     []*Item
	idem      map[string]*stored
	requests  []Request
	faults    []fault
	blocks    []*block
	now       func() time.Time
}

type stored struct {
	method, path string
	form         url.Values
	done         bool
	status       int
	body         []byte
}

type fault struct {
	pattern string
	status  int
}

type block struct {
	pattern string
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
}

// New starts a fake that is closed when the test ends.
func New(t testing.TB) *Server {
	s := &Server{idem: map[string]*stored{}, now: time.Now}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(func() {
		s.mu.Lock()
		bs := s.blocks
		s.blocks = nil
		s.mu.Unlock()
		for _, b := range bs {
			b.once.Do(func() { close(b.release) })
		}
		s.srv.Close()
	})
	return s
}

// FailNext makes the next request whose path matches pattern (path.Match syntax, for example
// "/v1/invoices/*/finalize") answer status with a Stripe error body, without executing it.
// Faults queue in the order they were added.
func (s *Server) FailNext(pattern string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, fault{pattern: pattern, status: status})
}

// BlockNext holds the next request whose path matches pattern before it executes. arrived is
// closed when that request arrives; after release the request executes and answers, whether or
// not its client is still waiting, like a Stripe call whose response is lost. While it is held
// its idempotency key is in flight, so a retry with the key gets 409.
func (s *Server) BlockNext(pattern string) (arrived <-chan struct{}, release func()) {
	b := &block{pattern: pattern, arrived: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	s.blocks = append(s.blocks, b)
	s.mu.Unlock()
	return b.arrived, func() { b.once.Do(func() { close(b.release) }) }
}

// ForgetIdempotencyKeys drops every stored idempotent response, as Stripe does with keys older
// than 24 hours.
func (s *Server) ForgetIdempotencyKeys() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, st := range s.idem {
		if st.done {
			delete(s.idem, k)
		}
	}
}

// SetInvoiceStatus changes an invoice's status as something outside billcycle would (a
// customer paying, an operator voiding in the dashboard). Paid sets AmountPaid to the total.
func (s *Server) SetInvoiceStatus(id, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv := s.invoice(id)
	if inv == nil {
		return fmt.Errorf("no invoice %q", id)
	}
	inv.Status = status
	if status == "paid" {
		inv.AmountPaid = s.total(inv)
	}
	return nil
}

// Customers returns a snapshot of the customers in creation order.
func (s *Server) Customers() []Customer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Customer, 0, len(s.customers))
	for _, c := range s.customers {
		cc := *c
		cc.Metadata = maps.Clone(c.Metadata)
		out = append(out, cc)
	}
	return out
}

// Invoices returns a snapshot of the invoices, with their items, in creation order.
func (s *Server) Invoices() []Invoice {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Invoice, 0, len(s.invoices))
	for _, inv := range s.invoices {
		c := *inv
		c.Metadata = maps.Clone(inv.Metadata)
		c.Items = nil
		for _, it := range s.itemsOf(inv.ID) {
			ic := *it
			ic.Metadata = maps.Clone(it.Metadata)
			c.Items = append(c.Items, ic)
		}
		out = append(out, c)
	}
	return out
}

// Requests returns every request received so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = r
		out[i].Form = cloneValues(r.Form)
	}
	return out
}

// response is what a handler produced.
type response struct {
	status int
	body   any
	// keep reports whether an idempotent response is stored for replay.
	keep bool
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.write(w, r, nil, "", response{status: 400, body: stripeErr("invalid_request_error", "", "could not parse form: "+err.Error())}, false)
		return
	}
	form := r.Form
	if r.Method == http.MethodPost {
		form = r.PostForm
	}
	key := strings.TrimSpace(r.Header.Get("Idempotency-Key"))

	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") || len(r.Header.Get("Authorization")) == len("Bearer ") {
		s.write(w, r, form, key, response{status: 401, body: stripeErr("invalid_request_error", "", "You did not provide an API key.")}, false)
		return
	}

	s.mu.Lock()
	if f, ok := s.takeFault(r.URL.Path); ok {
		s.mu.Unlock()
		s.write(w, r, form, key, response{status: f.status, body: faultBody(f.status)}, false)
		return
	}
	var st *stored
	if key != "" && r.Method == http.MethodPost {
		if prev, ok := s.idem[key]; ok {
			s.mu.Unlock()
			switch {
			case prev.method != r.Method || prev.path != r.URL.Path || !reflect.DeepEqual(prev.form, form):
				s.write(w, r, form, key, response{status: 400, body: stripeErr("idempotency_error", "",
					fmt.Sprintf("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '%s' if you meant to execute a different request.", key))}, false)
			case !prev.done:
				s.write(w, r, form, key, response{status: 409, body: stripeErr("idempotency_error", "idempotency_key_in_use",
					"There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): "+key+". Please try again later.")}, false)
			default:
				s.replay(w, r, form, key, prev)
			}
			return
		}
		st = &stored{method: r.Method, path: r.URL.Path, form: cloneValues(form)}
		s.idem[key] = st
	}
	b := s.takeBlock(r.URL.Path)
	s.mu.Unlock()

	if b != nil {
		close(b.arrived)
		<-b.release
	}

	s.mu.Lock()
	resp := s.route(r.Method, r.URL.Path, form)
	body, _ := json.Marshal(resp.body)
	if st != nil {
		if resp.keep {
			st.done, st.status, st.body = true, resp.status, body
		} else {
			delete(s.idem, key)
		}
	}
	s.mu.Unlock()
	s.writeRaw(w, r, form, key, resp.status, body, false)
}

func (s *Server) replay(w http.ResponseWriter, r *http.Request, form url.Values, key string, st *stored) {
	w.Header().Set("Idempotent-Replayed", "true")
	s.writeRaw(w, r, form, key, st.status, st.body, true)
}

func (s *Server) write(w http.ResponseWriter, r *http.Request, form url.Values, key string, resp response, replayed bool) {
	body, _ := json.Marshal(resp.body)
	s.writeRaw(w, r, form, key, resp.status, body, replayed)
}

func (s *Server) writeRaw(w http.ResponseWriter, r *http.Request, form url.Values, key string, status int, body []byte, replayed bool) {
	s.mu.Lock()
	s.requests = append(s.requests, Request{
		Method: r.Method, Path: r.URL.Path, IdempotencyKey: key,
		Form: cloneValues(form), Status: status, Replayed: replayed,
	})
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", fmt.Sprintf("req_fake_%d", time.Now().UnixNano()))
	if key != "" {
		w.Header().Set("Idempotency-Key", key)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) takeFault(p string) (fault, bool) {
	for i, f := range s.faults {
		if ok, _ := path.Match(f.pattern, p); ok {
			s.faults = slices.Delete(s.faults, i, i+1)
			return f, true
		}
	}
	return fault{}, false
}

func (s *Server) takeBlock(p string) *block {
	for i, b := range s.blocks {
		if ok, _ := path.Match(b.pattern, p); ok {
			s.blocks = slices.Delete(s.blocks, i, i+1)
			return b
		}
	}
	return nil
}

// route executes a request; the caller holds s.mu.
func (s *Server) route(method, p string, form url.Values) response {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	if len(parts) < 2 || parts[0] != "v1" {
		return notFound(p)
	}
	parts = parts[1:]
	switch {
	case method == http.MethodPost && len(parts) == 1 && parts[0] == "customers":
		return s.createCustomer(form)
	case method == http.MethodGet && len(parts) == 1 && parts[0] == "customers":
		return s.listCustomers(form)
	case method == http.MethodGet && len(parts) == 2 && parts[0] == "customers":
		if c := s.customer(parts[1]); c != nil {
			return ok(customerJSON(c))
		}
		return missing("customer", parts[1])
	case method == http.MethodPost && len(parts) == 1 && parts[0] == "invoices":
		return s.createInvoice(form)
	case method == http.MethodGet && len(parts) == 1 && parts[0] == "invoices":
		return s.listInvoices(form)
	case method == http.MethodGet && len(parts) == 2 && parts[0] == "invoices":
		if inv := s.invoice(parts[1]); inv != nil {
			return ok(s.invoiceJSON(inv))
		}
		return missing("invoice", parts[1])
	case method == http.MethodGet && len(parts) == 3 && parts[0] == "invoices" && parts[2] == "lines":
		inv := s.invoice(parts[1])
		if inv == nil {
			return missing("invoice", parts[1])
		}
		return ok(s.linesJSON(inv))
	case method == http.MethodPost && len(parts) == 3 && parts[0] == "invoices":
		return s.invoiceAction(parts[1], parts[2], form)
	case method == http.MethodPost && len(parts) == 1 && parts[0] == "invoiceitems":
		return s.createItem(form)
	}
	return notFound(p)
}

func (s *Server) newID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s_fake%06d", prefix, s.seq)
}

func (s *Server) createCustomer(form url.Values) response {
	c := &Customer{
		ID:       s.newID("cus"),
		Email:    form.Get("email"),
		Name:     form.Get("name"),
		Metadata: nested(form, "metadata"),
	}
	s.customers = append(s.customers, c)
	return ok(customerJSON(c))
}

func (s *Server) listCustomers(form url.Values) response {
	var data []any
	for _, c := range slices.Backward(s.customers) {
		if e := form.Get("email"); e != "" && c.Email != e {
			continue
		}
		data = append(data, customerJSON(c))
	}
	return ok(list("/v1/customers", data))
}

func (s *Server) createInvoice(form url.Values) response {
	cid := form.Get("customer")
	if cid == "" {
		return invalid("customer", "Missing required param: customer.", false)
	}
	if s.customer(cid) == nil {
		return response{status: 400, keep: true, body: stripeErrParam("invalid_request_error", "resource_missing", "customer",
			fmt.Sprintf("No such customer: '%s'", cid))}
	}
	method := form.Get("collection_method")
	if method == "" {
		method = "charge_automatically"
	}
	var days int64
	switch method {
	case "charge_automatically":
		if form.Has("days_until_due") {
			return invalid("days_until_due", "Invoices with collection_method=charge_automatically cannot have days_until_due.", true)
		}
	case "send_invoice":
		d, err := strconv.ParseInt(form.Get("days_until_due"), 10, 64)
		if err != nil {
			return invalid("days_until_due", "Invoices with collection_method=send_invoice need days_until_due or due_date.", true)
		}
		days = d
	default:
		return invalid("collection_method", "Invalid collection_method: "+method, false)
	}
	inv := &Invoice{
		ID:               s.newID("in"),
		Customer:         cid,
		Status:           "draft",
		Currency:         form.Get("currency"),
		CollectionMethod: method,
		DaysUntilDue:     days,
		AutoAdvance:      form.Get("auto_advance") != "false",
		Description:      form.Get("description"),
		Metadata:         nested(form, "metadata"),
		Created:          s.now().Unix(),
	}
	if inv.Currency == "" {
		inv.Currency = "usd"
	}
	s.invoices = append(s.invoices, inv)
	if form.Get("pending_invoice_items_behavior") == "include" {
		for _, it := range s.items {
			if it.Invoice == "" && it.Customer == cid {
				it.Invoice = inv.ID
			}
		}
	}
	return ok(s.invoiceJSON(inv))
}

func (s *Server) listInvoices(form url.Values) response {
	var gte int64
	if v := form.Get("created[gte]"); v != "" {
		gte, _ = strconv.ParseInt(v, 10, 64)
	}
	var data []any
	for _, inv := range slices.Backward(s.invoices) {
		if c := form.Get("customer"); c != "" && inv.Customer != c {
			continue
		}
		if st := form.Get("status"); st != "" && inv.Status != st {
			continue
		}
		if inv.Created < gte {
			continue
		}
		data = append(data, s.invoiceJSON(inv))
	}
	return ok(list("/v1/invoices", data))
}

func (s *Server) invoiceAction(id, action string, form url.Values) response {
	inv := s.invoice(id)
	if inv == nil {
		return missing("invoice", id)
	}
	switch action {
	case "finalize":
		if inv.Status != "draft" {
			return invalidState("This invoice is already finalized, you can't re-finalize a non-draft invoice.")
		}
		s.numbers++
		inv.Number = fmt.Sprintf("FAKE-%04d", s.numbers)
		if v := form.Get("auto_advance"); v != "" {
			inv.AutoAdvance = v == "true"
		}
		inv.Status = "open"
		if s.total(inv) <= 0 {
			inv.Status = "paid"
		}
	case "void":
		if inv.Status != "open" {
			return invalidState("You can only pass in open invoices. This invoice isn't open.")
		}
		inv.Status = "void"
	case "mark_uncollectible":
		if inv.Status != "open" {
			return invalidState("You can only pass in open invoices. This invoice isn't open.")
		}
		inv.Status = "uncollectible"
	case "pay":
		if inv.Status != "open" {
			return invalidState("Invoice is already " + inv.Status + ".")
		}
		inv.Status = "paid"
		inv.AmountPaid = s.total(inv)
	default:
		return notFound("/v1/invoices/" + id + "/" + action)
	}
	return ok(s.invoiceJSON(inv))
}

func (s *Server) createItem(form url.Values) response {
	cid := form.Get("customer")
	if cid == "" {
		return invalid("customer", "Missing required param: customer.", false)
	}
	amount, resp := itemAmount(form)
	if resp != nil {
		return *resp
	}
	if s.customer(cid) == nil {
		return response{status: 400, keep: true, body: stripeErrParam("invalid_request_error", "resource_missing", "customer",
			fmt.Sprintf("No such customer: '%s'", cid))}
	}
	it := &Item{
		ID:          s.newID("ii"),
		Customer:    cid,
		Currency:    form.Get("currency"),
		Amount:      amount,
		Description: form.Get("description"),
		Metadata:    nested(form, "metadata"),
	}
	if iid := form.Get("invoice"); iid != "" {
		inv := s.invoice(iid)
		if inv == nil {
			return response{status: 400, keep: true, body: stripeErrParam("invalid_request_error", "resource_missing", "invoice",
				fmt.Sprintf("No such invoice: '%s'", iid))}
		}
		if inv.Status != "draft" {
			return invalidState("You can only add invoice items to draft invoices.")
		}
		if inv.Customer != cid {
			return invalid("invoice", "The invoice belongs to another customer.", true)
		}
		if it.Currency == "" {
			it.Currency = inv.Currency
		}
		if it.Currency != inv.Currency {
			return invalid("currency", "The currency of the invoice item must match the invoice's currency.", true)
		}
		it.Invoice = iid
	}
	s.items = append(s.items, it)
	return ok(itemJSON(it))
}

func (s *Server) customer(id string) *Customer {
	for _, c := range s.customers {
		if c.ID == id {
			return c
		}
	}
	return nil
}

func (s *Server) invoice(id string) *Invoice {
	for _, inv := range s.invoices {
		if inv.ID == id {
			return inv
		}
	}
	return nil
}

func (s *Server) itemsOf(invoiceID string) []*Item {
	var out []*Item
	for _, it := range s.items {
		if it.Invoice == invoiceID {
			out = append(out, it)
		}
	}
	return out
}

func (s *Server) total(inv *Invoice) int64 {
	var t int64
	for _, it := range s.itemsOf(inv.ID) {
		t += it.Amount
	}
	return t
}

func customerJSON(c *Customer) map[string]any {
	return map[string]any{"id": c.ID, "object": "customer", "email": c.Email, "name": c.Name, "metadata": meta(c.Metadata)}
}

func itemJSON(it *Item) map[string]any {
	m := map[string]any{
		"id": it.ID, "object": "invoiceitem", "amount": it.Amount, "currency": it.Currency,
		"customer": it.Customer, "description": it.Description, "metadata": meta(it.Metadata),
	}
	if it.Invoice != "" {
		m["invoice"] = it.Invoice
	}
	return m
}

func (s *Server) linesJSON(inv *Invoice) map[string]any {
	var data []any
	for _, it := range s.itemsOf(inv.ID) {
		data = append(data, map[string]any{
			"id": "il_" + it.ID, "object": "line_item", "type": "invoiceitem", "invoice_item": it.ID,
			"invoice": inv.ID, "amount": it.Amount, "currency": it.Currency,
			"description": it.Description, "metadata": meta(it.Metadata),
		})
	}
	return list("/v1/invoices/"+inv.ID+"/lines", data)
}

func (s *Server) invoiceJSON(inv *Invoice) map[string]any {
	total := s.total(inv)
	due := total
	if due < 0 {
		due = 0
	}
	hosted := ""
	if inv.Status != "draft" {
		hosted = "https://invoice.stripe.fake/i/" + inv.ID
	}
	m := map[string]any{
		"id": inv.ID, "object": "invoice", "customer": inv.Customer, "status": inv.Status,
		"currency": inv.Currency, "collection_method": inv.CollectionMethod,
		"auto_advance": inv.AutoAdvance, "description": inv.Description, "metadata": meta(inv.Metadata),
		"subtotal": total, "total": total, "amount_due": due, "amount_paid": inv.AmountPaid,
		"amount_remaining": due - inv.AmountPaid, "hosted_invoice_url": hosted, "created": inv.Created,
		"lines": s.linesJSON(inv),
	}
	if inv.Number != "" {
		m["number"] = inv.Number
	}
	if inv.DaysUntilDue != 0 {
		m["days_until_due"] = inv.DaysUntilDue
	}
	return m
}

func list(url string, data []any) map[string]any {
	if data == nil {
		data = []any{}
	}
	return map[string]any{"object": "list", "url": url, "has_more": false, "data": data}
}

func meta(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// nested extracts Stripe's bracketed form keys, such as metadata[k]=v, into a map.
func nested(form url.Values, name string) map[string]string {
	out := map[string]string{}
	for k, v := range form {
		if inner, ok := strings.CutPrefix(k, name+"["); ok && strings.HasSuffix(inner, "]") && len(v) > 0 {
			out[strings.TrimSuffix(inner, "]")] = v[0]
		}
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func ok(body any) response { return response{status: 200, body: body, keep: true} }

func stripeErr(typ, code, msg string) map[string]any {
	e := map[string]any{"type": typ, "message": msg}
	if code != "" {
		e["code"] = code
	}
	return map[string]any{"error": e}
}

func stripeErrParam(typ, code, param, msg string) map[string]any {
	b := stripeErr(typ, code, msg)
	b["error"].(map[string]any)["param"] = param
	return b
}

// invalid is a 400 for a bad parameter; keep says whether Stripe would have started executing.
func invalid(param, msg string, keep bool) response {
	return response{status: 400, keep: keep, body: stripeErrParam("invalid_request_error", "parameter_invalid", param, msg)}
}

func invalidState(msg string) response {
	return response{status: 400, keep: true, body: stripeErr("invalid_request_error", "invoice_not_editable", msg)}
}

func missing(kind, id string) response {
	return response{status: 404, body: stripeErrParam("invalid_request_error", "resource_missing", "id",
		fmt.Sprintf("No such %s: '%s'", kind, id))}
}

func notFound(p string) response {
	return response{status: 404, body: stripeErr("invalid_request_error", "", "Unrecognized request URL (stripefake): "+p)}
}

func faultBody(status int) map[string]any {
	switch {
	case status == 429:
		return stripeErr("invalid_request_error", "rate_limit", "Too many requests hit the API too quickly (injected by stripefake).")
	case status >= 500:
		return stripeErr("api_error", "", "An unknown error occurred (injected by stripefake).")
	case status == 402:
		return stripeErr("card_error", "card_declined", "Your card was declined (injected by stripefake).")
	default:
		return stripeErr("invalid_request_error", "", fmt.Sprintf("Injected failure %d (stripefake).", status))
	}
}

// itemAmount is an invoice item's amount: the amount given, or quantity ×
// unit_amount_decimal rounded to the minor unit, half away from zero.
func itemAmount(form url.Values) (int64, *response) {
	if form.Has("amount") {
		amount, err := strconv.ParseInt(form.Get("amount"), 10, 64)
		if err != nil {
			r := invalid("amount", "Invalid integer: "+form.Get("amount"), false)
			return 0, &r
		}
		return amount, nil
	}
	if !form.Has("unit_amount_decimal") {
		r := invalid("amount", "Missing required param: amount or unit_amount_decimal.", false)
		return 0, &r
	}
	unit, err := decimal.NewFromString(form.Get("unit_amount_decimal"))
	if err != nil {
		r := invalid("unit_amount_decimal", "Invalid decimal: "+form.Get("unit_amount_decimal"), false)
		return 0, &r
	}
	qty := int64(1)
	if form.Has("quantity") {
		if qty, err = strconv.ParseInt(form.Get("quantity"), 10, 64); err != nil {
			r := invalid("quantity", "Invalid integer: "+form.Get("quantity"), false)
			return 0, &r
		}
	}
	return unit.Mul(decimal.NewFromInt(qty)).Round(0).IntPart(), nil
}
