package starter

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/store"
)

// catalogRoutes adds the catalog, subscription, preview and invoice routes.
func (s *Server) catalogRoutes(mux *http.ServeMux) {
	mux.Handle("POST /v1/products", s.authed(s.createProduct))
	mux.Handle("GET /v1/products", s.authed(s.listProducts))
	mux.Handle("GET /v1/products/{id}", s.authed(s.getProduct))
	mux.Handle("POST /v1/plans", s.authed(s.createPlan))
	mux.Handle("GET /v1/plans", s.authed(s.listPlans))
	mux.Handle("GET /v1/plans/{id}", s.authed(s.getPlan))
	mux.Handle("POST /v1/estimate", s.authed(s.estimate))
	mux.Handle("GET /v1/customers/{id}", s.authed(s.getCustomer))
	mux.Handle("GET /v1/customers/{id}/subscription", s.authed(s.getSubscription))
	mux.Handle("PUT /v1/customers/{id}/subscription", s.authed(s.putSubscription))
	mux.Handle("GET /v1/customers/{id}/invoice-preview", s.authed(s.invoicePreview))
	mux.Handle("GET /v1/invoices", s.authed(s.listInvoices))
	mux.Handle("GET /v1/invoices/{id...}", s.authed(s.getInvoice))
}

// fieldInvalid turns a billing validation error (a *billing.FieldError) into
// a 400 naming the field's JSON path under prefix; other errors pass through.
func fieldInvalid(prefix string, err error) error {
	var fe *billing.FieldError
	if errors.As(err, &fe) {
		return Invalid(joinField(prefix, fe.Field), "%s", fe.Message)
	}
	return err
}

// joinField joins JSON paths: ("plan", "products[0].id") is
// "plan.products[0].id", ("products", "[1]") is "products[1]".
func joinField(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	case field[0] == '[':
		return prefix + field
	}
	return prefix + "." + field
}

// prefixed moves an *Error's field under prefix.
func prefixed(prefix string, err error) error {
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusBadRequest {
		c := *e
		c.Field = joinField(prefix, e.Field)
		return &c
	}
	return err
}

func conflict(format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Code: "conflict", Message: fmt.Sprintf(format, args...)}
}

func checkID(field, id string) error {
	switch {
	case id == "":
		return Invalid(field, "is required")
	case !idPattern.MatchString(id):
		return Invalid(field, "must be 1-128 characters of letters, digits and _.:@- starting with a letter or digit")
	}
	return nil
}

// createdStatus is 201 for a new row and 200 for a repeat of an existing one.
func createdStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// createProduct stores a product (POST /v1/products). Products are
// immutable: posting the same definition again answers 200, another
// definition under the same id 409.
func (s *Server) createProduct(w http.ResponseWriter, r *http.Request) error {
	var p billing.Product
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &p); err != nil {
		return err
	}
	if err := checkID("id", p.ID); err != nil {
		return err
	}
	got, created, err := s.store.CreateProduct(r.Context(), p)
	if errors.Is(err, store.ErrConflict) {
		return conflict("product %q exists with another definition; products are immutable, create a new id", p.ID)
	}
	if err != nil {
		return fieldInvalid("", err)
	}
	writeJSON(w, createdStatus(created), got)
	return nil
}

func (s *Server) listProducts(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.store.Products(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"products": ps})
	return nil
}

func (s *Server) getProduct(w http.ResponseWriter, r *http.Request) error {
	p, err := s.store.Product(r.Context(), r.PathValue("id"))
	if err != nil {
		return found(err, "product "+strconv.Quote(r.PathValue("id")))
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// planRequest is a plan as posted: each element of products is either the id
// of a catalog product (a JSON string) or a product defined inline.
type planRequest struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Currency      string            `json:"currency"`
	Interval      *billing.Interval `json:"interval"`
	Products      []json.RawMessage `json:"products"`
	DunningPolicy string            `json:"dunning_policy"`
}

// resolvePlan resolves the request into a validated billing.Plan. Field paths in
// errors are JSON paths of the request under prefix.
func (s *Server) resolvePlan(r *http.Request, req planRequest, prefix string) (billing.Plan, error) {
	if err := checkID(joinField(prefix, "id"), req.ID); err != nil {
		return billing.Plan{}, err
	}
	p := billing.Plan{ID: req.ID, Name: req.Name, Currency: billing.Currency(strings.ToLower(req.Currency)),
		Interval: billing.Interval{Unit: billing.Month, Count: 1}, DunningPolicy: req.DunningPolicy}
	if req.Interval != nil {
		p.Interval = *req.Interval
	}
	for i, raw := range req.Products {
		field := joinField(prefix, "products["+strconv.Itoa(i)+"]")
		var id string
		if json.Unmarshal(raw, &id) == nil {
			got, err := s.store.Product(r.Context(), id)
			if errors.Is(err, store.ErrNotFound) {
				return billing.Plan{}, Invalid(field, "unknown product %q; create it with POST /v1/products or define it inline", id)
			}
			if err != nil {
				return billing.Plan{}, err
			}
			p.Products = append(p.Products, got.Product)
			continue
		}
		var prod billing.Product
		if err := unmarshalStrict(raw, &prod); err != nil {
			return billing.Plan{}, prefixed(field, err)
		}
		p.Products = append(p.Products, prod)
	}
	if err := p.Validate(); err != nil {
		return billing.Plan{}, fieldInvalid(prefix, err)
	}
	return p, nil
}

// createPlan stores a plan (POST /v1/plans), with the immutability rules of
// products. The plan keeps a copy of its products.
func (s *Server) createPlan(w http.ResponseWriter, r *http.Request) error {
	var req planRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	p, err := s.resolvePlan(r, req, "")
	if err != nil {
		return err
	}
	got, created, err := s.store.CreatePlan(r.Context(), p)
	if errors.Is(err, store.ErrConflict) {
		return conflict("plan %q exists with another definition; plans are immutable, create a new id", p.ID)
	}
	if err != nil {
		return fieldInvalid("", err)
	}
	writeJSON(w, createdStatus(created), got)
	return nil
}

func (s *Server) listPlans(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.store.Plans(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"plans": ps})
	return nil
}

func (s *Server) getPlan(w http.ResponseWriter, r *http.Request) error {
	p, err := s.store.StoredPlan(r.Context(), r.PathValue("id"))
	if err != nil {
		return found(err, "plan "+strconv.Quote(r.PathValue("id")))
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

type estimateRequest struct {
	// Plan is a plan id (a JSON string) or a plan defined inline.
	Plan       json.RawMessage            `json:"plan"`
	Quantities map[string]decimal.Decimal `json:"quantities"`
}

// estimate rates quantities for one cycle of a plan (POST /v1/estimate), for
// prospective customers: no discounts, tax or credits.
func (s *Server) estimate(w http.ResponseWriter, r *http.Request) error {
	var req estimateRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	var plan billing.Plan
	var id string
	switch {
	case len(req.Plan) == 0 || string(req.Plan) == "null":
		return Invalid("plan", "is required: a plan id or a plan object")
	case json.Unmarshal(req.Plan, &id) == nil:
		p, err := s.store.Plan(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			return Invalid("plan", "unknown plan %q", id)
		}
		if err != nil {
			return err
		}
		plan = p
	default:
		var pr planRequest
		if err := unmarshalStrict(req.Plan, &pr); err != nil {
			return prefixed("plan", err)
		}
		p, err := s.resolvePlan(r, pr, "plan")
		if err != nil {
			return err
		}
		plan = p
	}
	priced := map[string]bool{}
	for _, prod := range plan.Products {
		for _, mp := range prod.Prices {
			priced[mp.Meter] = true
		}
	}
	for m, q := range req.Quantities {
		switch {
		case !priced[m]:
			return Invalid("quantities."+m, "plan %q prices no meter %q", plan.ID, m)
		case q.IsNegative():
			return Invalid("quantities."+m, "must not be negative")
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"plan_id": plan.ID, "interval": plan.Interval, "estimate": billing.Estimate(plan, req.Quantities)})
	return nil
}
