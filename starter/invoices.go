package starter

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/billing/meter"
	"github.com/billcycle/billcycle/render"
	"github.com/billcycle/billcycle/store"
)

// listInvoices answers GET /v1/invoices?customer_id=: the customer's
// invoices, newest period first, without lines.
func (s *Server) listInvoices(w http.ResponseWriter, r *http.Request) error {
	id := r.URL.Query().Get("customer_id")
	if id == "" {
		return Invalid("customer_id", "is required")
	}
	invs, err := s.store.Invoices(r.Context(), id)
	if err != nil {
		return err
	}
	if invs == nil {
		invs = []store.Invoice{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"invoices": invs})
	return nil
}

// getInvoice answers GET /v1/invoices/{id}, {id}.csv and {id}.pdf. Invoice
// ids contain slashes ("customer/acme/2026-03-01/cycle"); they may be sent
// as they are or escaped.
func (s *Server) getInvoice(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	format := "json"
	for _, f := range []string{"csv", "pdf"} {
		if base, ok := strings.CutSuffix(id, "."+f); ok {
			id, format = base, f
		}
	}
	inv, err := s.store.Invoice(r.Context(), id)
	if err != nil {
		return found(err, "invoice "+strconv.Quote(id))
	}
	if format == "json" {
		writeJSON(w, http.StatusOK, inv)
		return nil
	}
	doc, err := s.invoiceDocument(r, inv)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	ctype := "text/csv; charset=utf-8"
	if format == "csv" {
		err = render.CSV(&buf, doc)
	} else {
		ctype = "application/pdf"
		err = render.PDF(&buf, doc)
	}
	if err != nil {
		return err
	}
	name := "invoice-" + strings.NewReplacer("/", "-", `"`, "", "\\", "").Replace(id) + "." + format
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
	return nil
}

// invoiceDocument prepares a stored invoice for rendering.
func (s *Server) invoiceDocument(r *http.Request, inv store.Invoice) (render.Document, error) {
	doc := render.Document{ID: inv.ID, Kind: inv.Kind, Status: inv.Status, StripeInvoiceID: inv.StripeInvoiceID,
		Customer: render.Customer{ID: inv.CustomerID}, IssuedAt: inv.CreatedAt, DueAt: inv.DueAt, Invoice: inv.Billing()}
	c, err := s.store.Customer(r.Context(), inv.CustomerID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return doc, err
	}
	doc.Customer.Name, doc.Customer.Email = c.Name, c.Email
	// Show the tax rate only when the current rate reproduces the billed tax.
	if sub, _, err := s.store.Subscription(r.Context(), inv.CustomerID); err == nil && sub.TaxRate.IsPositive() {
		base := decimal.NewFromInt(inv.Subtotal - inv.Discount)
		if billing.Round(base.Mul(sub.TaxRate).Shift(-2), inv.Currency) == inv.Tax {
			doc.TaxRate = sub.TaxRate
		}
	}
	return doc, nil
}

// projectionMethod states how the preview projects a period's end.
const projectionMethod = "linear: each count and sum meter's quantity so far × (full period ÷ elapsed time); " +
	"max, min, last and unique_count meters are projected at their current value"

// invoicePreview answers GET /v1/customers/{id}/invoice-preview: the bill so
// far in the current period (usage rated with the subscription's terms),
// what threshold invoices already billed this period, what is still due,
// and a projection to the period's end from the usage rate so far.
func (s *Server) invoicePreview(w http.ResponseWriter, r *http.Request) error {
	c, err := s.pathCustomer(r)
	if err != nil {
		return err
	}
	rec, plan, err := s.loadSubscription(r.Context(), c.ID)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	period := billing.PeriodAt(rec.Anchor, plan.Interval, now)
	usage, err := s.store.MeterTotals(r.Context(), c.ID, period.Start, now)
	if err != nil {
		return err
	}
	soFar := billing.Rate(plan, rec.Subscription, period, usage)

	invs, err := s.store.PeriodInvoices(r.Context(), c.ID, period.Start)
	if err != nil {
		return err
	}
	billed := make([]billing.Invoice, 0, len(invs))
	ids := []string{}
	for _, inv := range invs {
		billed = append(billed, inv.Billing())
		ids = append(ids, inv.ID)
	}
	previous := sumInvoices(billed, soFar)
	due := billing.Increment(soFar, previous)

	elapsed, full := now.Sub(period.Start), period.End.Sub(period.Start)
	factor := decimal.NewFromInt(1)
	if elapsed > 0 {
		factor = decimal.NewFromInt(int64(full)).DivRound(decimal.NewFromInt(int64(elapsed)), 12)
	}
	additive := map[string]bool{}
	if ms, err := s.store.Meters(r.Context(), false); err == nil {
		for _, m := range ms {
			additive[m.Slug] = m.Aggregation == meter.AggregationCount || m.Aggregation == meter.AggregationSum
		}
	} else {
		return err
	}
	projected := make(map[string]decimal.Decimal, len(usage))
	for m, q := range usage {
		if additive[m] {
			q = q.Mul(factor).Round(6)
		}
		projected[m] = q
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"customer_id":      c.ID,
		"plan_id":          plan.ID,
		"currency":         plan.Currency,
		"period":           period,
		"as_of":            now,
		"in_trial":         rec.InTrial(now),
		"so_far":           soFar,
		"already_invoiced": map[string]any{"invoices": ids, "total": previous.Total},
		"due_now":          due,
		"projection": map[string]any{
			"method":     projectionMethod,
			"factor":     factor,
			"quantities": projected,
			"invoice":    billing.Rate(plan, rec.Subscription, period, projected),
		},
	})
	return nil
}

// sumInvoices adds up the invoices of one period into the cumulative invoice
// they bill together (the increments of billing.Increment telescope), with
// lines matched by product and meter in the order of like.
func sumInvoices(invs []billing.Invoice, like billing.Invoice) billing.Invoice {
	out := billing.Invoice{CustomerID: like.CustomerID, PlanID: like.PlanID, Currency: like.Currency,
		PeriodStart: like.PeriodStart, PeriodEnd: like.PeriodEnd, Lines: []billing.Line{}}
	type key struct{ product, meter string }
	at := map[key]int{}
	for _, inv := range invs {
		for _, l := range inv.Lines {
			k := key{l.Product, l.Meter}
			i, ok := at[k]
			if !ok {
				at[k] = len(out.Lines)
				l.Tiers = append([]billing.TierCharge(nil), l.Tiers...)
				out.Lines = append(out.Lines, l)
				continue
			}
			s := &out.Lines[i]
			s.Quantity, s.FreeUnits = s.Quantity.Add(l.Quantity), s.FreeUnits.Add(l.FreeUnits)
			s.BillableQuantity, s.Packages = s.BillableQuantity.Add(l.BillableQuantity), s.Packages.Add(l.Packages)
			s.Amount += l.Amount
			s.Tiers = addTiers(s.Tiers, l.Tiers)
		}
		out.Subtotal += inv.Subtotal
		out.Discount += inv.Discount
		out.Tax += inv.Tax
		out.CreditApplied += inv.CreditApplied
		out.Total += inv.Total
	}
	return out
}

func addTiers(sum, more []billing.TierCharge) []billing.TierCharge {
	for _, t := range more {
		found := false
		for i := range sum {
			s := &sum[i]
			if s.From.Equal(t.From) && (s.To == nil) == (t.To == nil) && (s.To == nil || s.To.Equal(*t.To)) {
				s.Quantity, s.FlatFee, s.Amount = s.Quantity.Add(t.Quantity), s.FlatFee.Add(t.FlatFee), s.Amount.Add(t.Amount)
				found = true
				break
			}
		}
		if !found {
			sum = append(sum, t)
		}
	}
	return sum
}
