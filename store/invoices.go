package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/billing"
)

// Invoice kinds.
const (
	// KindThreshold is an early invoice issued when a billing threshold is crossed.
	KindThreshold = "threshold"
	// KindCycle is the invoice at the end of a billing cycle.
	KindCycle = "cycle"
)

// InvoiceStatusDraft is the status of an invoice recorded here but not yet
// issued in Stripe; afterwards the status is Stripe's (open, paid, void,
// uncollectible).
const InvoiceStatusDraft = "draft"

// InvoiceStatusPaid is Stripe's status of a paid invoice; billcycle also
// gives it to zero-total invoices, which are never sent to Stripe.
const InvoiceStatusPaid = "paid"

// LineQuery is the meter query behind an invoice line: the events of
// CustomerID with event time in [From, To), aggregated with Aggregation,
// give the cycle-to-date quantity the line was rated on. Support re-runs it
// with GET /v1/events?customer_id=&from=&to=.
type LineQuery struct {
	Meter       string    `json:"meter"`
	CustomerID  string    `json:"customer_id"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	Aggregation string    `json:"aggregation,omitempty"`
}

// InvoiceLine is one stored invoice line with its meter query (nil for a
// flat fee).
type InvoiceLine struct {
	billing.Line
	Query *LineQuery `json:"query,omitempty"`
}

// Invoice is one invoice of the ledger.
type Invoice struct {
	ID               string           `json:"id"`
	CustomerID       string           `json:"customer_id"`
	Kind             string           `json:"kind"`
	PlanID           string           `json:"plan_id"`
	Currency         billing.Currency `json:"currency"`
	PeriodStart      time.Time        `json:"period_start"`
	PeriodEnd        time.Time        `json:"period_end"`
	Lines            []InvoiceLine    `json:"lines"`
	Subtotal         int64            `json:"subtotal"`
	Discount         int64            `json:"discount"`
	Tax              int64            `json:"tax"`
	CreditApplied    int64            `json:"credit_applied"`
	Total            int64            `json:"total"`
	Status           string           `json:"status"`
	CollectionMethod string           `json:"collection_method"`
	DaysUntilDue     int              `json:"days_until_due,omitempty"`
	StripeInvoiceID  string           `json:"stripe_invoice_id,omitempty"`
	DueAt            time.Time        `json:"due_at"`
	CreatedAt        time.Time        `json:"created_at"`
}

// Billing returns the invoice's amounts as a billing.Invoice.
func (inv Invoice) Billing() billing.Invoice {
	out := billing.Invoice{
		CustomerID: inv.CustomerID, PlanID: inv.PlanID, Currency: inv.Currency,
		PeriodStart: inv.PeriodStart, PeriodEnd: inv.PeriodEnd, Lines: make([]billing.Line, len(inv.Lines)),
		Subtotal: inv.Subtotal, Discount: inv.Discount, Tax: inv.Tax, CreditApplied: inv.CreditApplied, Total: inv.Total,
	}
	for i, l := range inv.Lines {
		out.Lines[i] = l.Line
	}
	return out
}

// NewInvoice is an invoice to record.
type NewInvoice struct {
	ID         string
	CustomerID string
	Kind       string
	Invoice    billing.Invoice
	// UsageTo ends the meter queries of the lines (exclusive): usage in
	// [Invoice.PeriodStart, UsageTo) is what the amounts were rated on.
	UsageTo          time.Time
	CollectionMethod string
	DaysUntilDue     int
	// Status is the initial status: InvoiceStatusDraft, or InvoiceStatusPaid
	// for an invoice with nothing due.
	Status string
	// DueAt is when payment is due.
	DueAt time.Time
}

// RecordInvoice stores in with its lines and returns the stored invoice and
// whether this call created it. It is idempotent on in.ID: when an invoice
// with that id exists, it is returned unchanged (its lines are not touched),
// whatever in holds. Each metered line records its meter query, with the
// meter's aggregation when the meter is defined.
func (s *Store) RecordInvoice(ctx context.Context, in NewInvoice) (Invoice, bool, error) {
	switch {
	case in.ID == "":
		return Invoice{}, false, errors.New("record invoice: id is required")
	case in.Kind != KindThreshold && in.Kind != KindCycle:
		return Invoice{}, false, fmt.Errorf("record invoice %s: unknown kind %q", in.ID, in.Kind)
	}
	if in.CollectionMethod == "" {
		in.CollectionMethod = ChargeAutomatically
	}
	if in.Status == "" {
		in.Status = InvoiceStatusDraft
	}
	if in.UsageTo.IsZero() {
		in.UsageTo = in.Invoice.PeriodEnd
	}
	b := in.Invoice
	created := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			INSERT INTO invoices (id, customer_id, kind, plan_id, period_start, period_end, currency, subtotal, discount,
				tax, credit_applied, total, status, collection_method, days_until_due, due_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
			ON CONFLICT (id) DO NOTHING`,
			in.ID, in.CustomerID, in.Kind, b.PlanID, b.PeriodStart.UTC(), b.PeriodEnd.UTC(), string(b.Currency),
			b.Subtotal, b.Discount, b.Tax, b.CreditApplied, b.Total, in.Status, in.CollectionMethod, in.DaysUntilDue, in.DueAt.UTC())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil // recorded before: keep the first version and its lines
		}
		created = true
		// Credit is consumed when the invoice that applies it is recorded, in
		// the same transaction, so a retried activity consumes it once.
		if b.CreditApplied != 0 {
			if _, err := tx.Exec(ctx, `UPDATE subscriptions SET credit_balance = credit_balance - $2, updated_at = now()
				WHERE customer_id = $1`, in.CustomerID, b.CreditApplied); err != nil {
				return fmt.Errorf("consume credit: %w", err)
			}
		}
		aggs, err := meterAggregations(ctx, tx)
		if err != nil {
			return err
		}
		for i, l := range b.Lines {
			tiers, err := json.Marshal(l.Tiers)
			if err != nil {
				return err
			}
			if l.Tiers == nil {
				tiers = []byte("[]")
			}
			var qCustomer string
			var qFrom, qTo *time.Time
			if l.Meter != "" {
				from, to := b.PeriodStart.UTC(), in.UsageTo.UTC()
				qCustomer, qFrom, qTo = in.CustomerID, &from, &to
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO invoice_lines (invoice_id, position, product_id, meter, model, description, quantity, free_units,
					billable_quantity, unit_price, packages, tiers, amount, query_customer_id, query_from, query_to, aggregation)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
				in.ID, i, l.Product, l.Meter, string(l.Model), l.Description, l.Quantity, l.FreeUnits,
				l.BillableQuantity, l.UnitPrice, l.Packages, tiers, l.Amount, qCustomer, qFrom, qTo, aggs[l.Meter]); err != nil {
				return fmt.Errorf("line %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		return Invoice{}, false, fmt.Errorf("record invoice %s: %w", in.ID, err)
	}
	inv, err := s.Invoice(ctx, in.ID)
	return inv, created, err
}

// meterAggregations returns the aggregation of every defined meter by slug.
func meterAggregations(ctx context.Context, tx pgx.Tx) (map[string]string, error) {
	rows, err := tx.Query(ctx, `SELECT slug, coalesce(aggregation, '') FROM meters`)
	if err != nil {
		return nil, fmt.Errorf("meter aggregations: %w", err)
	}
	out := map[string]string{}
	var slug, agg string
	_, err = pgx.ForEachRow(rows, []any{&slug, &agg}, func() error {
		out[slug] = agg
		return nil
	})
	return out, err
}

// SetInvoiceIssued records the Stripe invoice that bills invoice id and its
// status.
func (s *Store) SetInvoiceIssued(ctx context.Context, id, stripeInvoiceID, status string) error {
	// A webhook may have settled the invoice before the issuing activity got
	// here (an automatic charge is fast); a settled status is never undone.
	tag, err := s.pool.Exec(ctx, `UPDATE invoices SET stripe_invoice_id = $2, updated_at = now(),
		status = CASE WHEN status IN ('paid', 'void', 'uncollectible') THEN status ELSE $3 END
		WHERE id = $1`, id, stripeInvoiceID, status)
	if err != nil {
		return fmt.Errorf("set stripe invoice of %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// SetInvoiceStatus records a new status of invoice id (for example from a
// Stripe webhook).
func (s *Store) SetInvoiceStatus(ctx context.Context, id, status string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE invoices SET status = $2, updated_at = now() WHERE id = $1`, id, status)
	if err != nil {
		return fmt.Errorf("set status of invoice %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

const invoiceColumns = `id, customer_id, kind, plan_id, period_start, period_end, currency, subtotal, discount, tax,
	credit_applied, total, status, collection_method, days_until_due, coalesce(stripe_invoice_id, ''), due_at, created_at`

func scanInvoice(row pgx.CollectableRow) (Invoice, error) {
	var inv Invoice
	var cur string
	err := row.Scan(&inv.ID, &inv.CustomerID, &inv.Kind, &inv.PlanID, &inv.PeriodStart, &inv.PeriodEnd, &cur,
		&inv.Subtotal, &inv.Discount, &inv.Tax, &inv.CreditApplied, &inv.Total, &inv.Status, &inv.CollectionMethod,
		&inv.DaysUntilDue, &inv.StripeInvoiceID, &inv.DueAt, &inv.CreatedAt)
	inv.Currency = billing.Currency(cur)
	inv.PeriodStart, inv.PeriodEnd, inv.DueAt, inv.CreatedAt = inv.PeriodStart.UTC(), inv.PeriodEnd.UTC(), inv.DueAt.UTC(), inv.CreatedAt.UTC()
	return inv, err
}

// Invoice returns the invoice with its lines, or ErrNotFound.
func (s *Store) Invoice(ctx context.Context, id string) (Invoice, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+invoiceColumns+` FROM invoices WHERE id = $1`, id)
	if err != nil {
		return Invoice{}, fmt.Errorf("invoice %s: %w", id, err)
	}
	invs, err := pgx.CollectRows(rows, scanInvoice)
	if err != nil {
		return Invoice{}, fmt.Errorf("invoice %s: %w", id, err)
	}
	if len(invs) == 0 {
		return Invoice{}, ErrNotFound
	}
	inv := invs[0]
	if inv.Lines, err = s.invoiceLines(ctx, id); err != nil {
		return Invoice{}, fmt.Errorf("invoice %s: %w", id, err)
	}
	return inv, nil
}

func (s *Store) invoiceLines(ctx context.Context, id string) ([]InvoiceLine, error) {
	rows, err := s.pool.Query(ctx, `SELECT product_id, meter, model, description, quantity, free_units, billable_quantity,
		unit_price, packages, tiers, amount, query_customer_id, query_from, query_to, aggregation
		FROM invoice_lines WHERE invoice_id = $1 ORDER BY position`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (InvoiceLine, error) {
		var l InvoiceLine
		var model, qCustomer, agg string
		var qFrom, qTo *time.Time
		var tiers []byte
		var qty, free, billable, unit, packages decimal.Decimal
		if err := row.Scan(&l.Product, &l.Meter, &model, &l.Description, &qty, &free, &billable, &unit, &packages,
			&tiers, &l.Amount, &qCustomer, &qFrom, &qTo, &agg); err != nil {
			return InvoiceLine{}, err
		}
		l.Model = billing.PriceModel(model)
		l.Quantity, l.FreeUnits, l.BillableQuantity, l.UnitPrice, l.Packages = qty, free, billable, unit, packages
		if err := json.Unmarshal(tiers, &l.Tiers); err != nil {
			return InvoiceLine{}, fmt.Errorf("line tiers: %w", err)
		}
		if len(l.Tiers) == 0 {
			l.Tiers = nil
		}
		if qFrom != nil && qTo != nil {
			l.Query = &LineQuery{Meter: l.Meter, CustomerID: qCustomer, From: qFrom.UTC(), To: qTo.UTC(), Aggregation: agg}
		}
		return l, nil
	})
}

// Invoices lists a customer's invoices, newest period first, without lines.
func (s *Store) Invoices(ctx context.Context, customerID string) ([]Invoice, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+invoiceColumns+` FROM invoices WHERE customer_id = $1
		ORDER BY period_start DESC, created_at DESC, id`, customerID)
	if err != nil {
		return nil, fmt.Errorf("invoices of %s: %w", customerID, err)
	}
	invs, err := pgx.CollectRows(rows, scanInvoice)
	if err != nil {
		return nil, fmt.Errorf("invoices of %s: %w", customerID, err)
	}
	return invs, nil
}

// PeriodInvoices returns a customer's invoices of the period starting at
// start, with their lines, oldest first: what was already billed in a cycle.
func (s *Store) PeriodInvoices(ctx context.Context, customerID string, start time.Time) ([]Invoice, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+invoiceColumns+` FROM invoices WHERE customer_id = $1 AND period_start = $2
		ORDER BY created_at, id`, customerID, start.UTC())
	if err != nil {
		return nil, fmt.Errorf("invoices of %s for %s: %w", customerID, start, err)
	}
	invs, err := pgx.CollectRows(rows, scanInvoice)
	if err != nil {
		return nil, fmt.Errorf("invoices of %s for %s: %w", customerID, start, err)
	}
	for i := range invs {
		if invs[i].Lines, err = s.invoiceLines(ctx, invs[i].ID); err != nil {
			return nil, fmt.Errorf("invoice %s: %w", invs[i].ID, err)
		}
	}
	return invs, nil
}
