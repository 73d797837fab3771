package stripe

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	stripego "github.com/stripe/stripe-go/v76"
)

// Collection methods accepted by InvoiceInput.CollectionMethod.
const (
	// ChargeAutomatically charges the customer's default payment method.
	ChargeAutomatically = "charge_automatically"
	// SendInvoice leaves payment to the customer, who pays through the hosted invoice page.
	SendInvoice = "send_invoice"
)

// Invoice statuses as Stripe reports them.
const (
	StatusDraft         = "draft"
	StatusOpen          = "open"
	StatusPaid          = "paid"
	StatusUncollectible = "uncollectible"
	StatusVoid          = "void"
)

// findLookback bounds how far back IssueInvoice looks for an invoice an earlier attempt
// created; only retries older than Stripe's 24-hour key retention need the lookup at all.
const findLookback = 45 * 24 * time.Hour

// InvoiceLine is one line of a billcycle invoice.
type InvoiceLine struct {
	// Description is the line's text, for example "API requests".
	Description string
	// Quantity is the billed quantity; shown in the line's description and metadata.
	Quantity decimal.Decimal
	// UnitAmountDecimal is the unit price in minor units, possibly fractional (0.04 is
	// $0.0004). When Quantity × UnitAmountDecimal reproduces Amount exactly (see
	// decimalPricing), the item is created from Stripe's quantity and unit_amount_decimal
	// fields, so Stripe prints the sub-cent price itself.
	UnitAmountDecimal decimal.Decimal
	// Amount is the exact line amount in minor units; Stripe's item always comes to this
	// number. Negative amounts are credits.
	Amount int64
}

// InvoiceInput is a billcycle invoice to issue in Stripe.
type InvoiceInput struct {
	// InvoiceID is billcycle's stable invoice id; required. All idempotency keys derive from it.
	InvoiceID string
	// StripeCustomerID is the Stripe customer to bill; required.
	StripeCustomerID string
	// Currency is the ISO 4217 code, any case; required.
	Currency string
	// Description is the invoice memo shown to the customer.
	Description string
	// Lines are the invoice's lines in display order.
	Lines []InvoiceLine
	// CollectionMethod is ChargeAutomatically (the default when empty) or SendInvoice.
	CollectionMethod string
	// DaysUntilDue is required, and only used, with SendInvoice.
	DaysUntilDue int
	// Metadata is copied onto the Stripe invoice next to billcycle_invoice_id.
	Metadata map[string]string
}

// Invoice is the state of a Stripe invoice.
type Invoice struct {
	// ID is Stripe's invoice id (in_...).
	ID string
	// Status is one of the Status constants.
	Status string
	// Number is the invoice number Stripe assigns at finalization.
	Number string
	// Currency is the lower-case ISO 4217 code.
	Currency string
	// Total is the invoice total in minor units.
	Total int64
	// AmountDue is what remains to be paid, in minor units.
	AmountDue int64
	// AmountPaid is what has been paid, in minor units.
	AmountPaid int64
	// HostedURL is the customer-facing payment page; empty while a draft.
	HostedURL string
	// BillcycleInvoiceID is the billcycle_invoice_id metadata, if any.
	BillcycleInvoiceID string
}

// IssueInvoice creates, fills and finalizes the Stripe invoice for in.InvoiceID and returns it.
//
// It creates the invoice (key "invoice/<InvoiceID>", auto_advance false,
// pending_invoice_items_behavior "exclude", metadata billcycle_invoice_id), adds one invoice
// item per line with the line's exact Amount (key "invoice/<InvoiceID>/line/<n>", n from 0),
// then finalizes it (key "invoice/<InvoiceID>/finalize"). Finalizing turns auto_advance on for
// ChargeAutomatically, so Stripe collects payment itself, and leaves it off for SendInvoice,
// so Stripe sends no email of its own.
//
// Calling it again with the same InvoiceID, after any partial failure, yields the same single
// invoice with the same lines: an invoice created by an earlier attempt is found by its
// metadata (within 45 days) and its items by billcycle_line, and the idempotency keys make
// concurrent or repeated creates return the first result. An invoice that is no longer a draft
// is returned as it is. Changing the amounts of an InvoiceID that Stripe already holds is a
// permanent error: a line whose amount differs from the item in Stripe, or a finalized invoice
// whose subtotal differs from the lines' sum.
func (c *Client) IssueInvoice(ctx context.Context, in InvoiceInput) (Invoice, error) {
	const op = "issue invoice"
	if err := validateInvoice(&in); err != nil {
		return Invoice{}, err
	}

	inv, err := c.findInvoice(ctx, in.StripeCustomerID, in.InvoiceID)
	if err != nil {
		return Invoice{}, classify(op+": find invoice", err)
	}
	if inv == nil {
		p := &stripego.InvoiceParams{
			Params:                      params(ctx, IdempotencyKey("invoice", in.InvoiceID)),
			Customer:                    stripego.String(in.StripeCustomerID),
			Currency:                    stripego.String(in.Currency),
			CollectionMethod:            stripego.String(in.CollectionMethod),
			AutoAdvance:                 stripego.Bool(false),
			PendingInvoiceItemsBehavior: stripego.String("exclude"),
			Metadata:                    withMeta(in.Metadata, MetadataInvoiceID, in.InvoiceID),
		}
		if in.Description != "" {
			p.Description = stripego.String(in.Description)
		}
		if in.CollectionMethod == SendInvoice {
			p.DaysUntilDue = stripego.Int64(int64(in.DaysUntilDue))
		}
		inv, err = c.api.Invoices.New(p)
		if err != nil {
			return Invoice{}, classify(op+": create invoice", err)
		}
	}
	if inv.Status != stripego.InvoiceStatusDraft {
		if want := sumLines(in.Lines); inv.Subtotal != want {
			return Invoice{}, invalidInput(op, fmt.Sprintf(
				"invoice %s was issued as %s with subtotal %d, not %d", in.InvoiceID, inv.ID, inv.Subtotal, want))
		}
		return toInvoice(inv), nil
	}

	have, err := c.existingLines(ctx, inv)
	if err != nil {
		return Invoice{}, classify(op+": list invoice lines", err)
	}
	for n, l := range in.Lines {
		if amount, ok := have[n]; ok {
			if amount != l.Amount {
				return Invoice{}, invalidInput(op, fmt.Sprintf(
					"line %d of invoice %s is in stripe with amount %d, not %d", n, in.InvoiceID, amount, l.Amount))
			}
			continue
		}
		p := &stripego.InvoiceItemParams{
			Params:      params(ctx, IdempotencyKey("invoice", in.InvoiceID, "line", strconv.Itoa(n))),
			Customer:    stripego.String(in.StripeCustomerID),
			Invoice:     stripego.String(inv.ID),
			Currency:    stripego.String(in.Currency),
			Description: stripego.String(lineDescription(l, in.Currency)),
			Metadata: map[string]string{
				MetadataInvoiceID:     in.InvoiceID,
				MetadataLine:          strconv.Itoa(n),
				"quantity":            l.Quantity.String(),
				"unit_amount_decimal": l.UnitAmountDecimal.String(),
			},
		}
		if qty, unit, ok := decimalPricing(l); ok {
			p.Quantity, p.UnitAmountDecimal = stripego.Int64(qty), stripego.Float64(unit)
		} else {
			p.Amount = stripego.Int64(l.Amount)
		}
		if _, err := c.api.InvoiceItems.New(p); err != nil {
			return Invoice{}, classify(fmt.Sprintf("%s: create line %d", op, n), err)
		}
	}

	fp := &stripego.InvoiceFinalizeInvoiceParams{
		Params:      params(ctx, IdempotencyKey("invoice", in.InvoiceID, "finalize")),
		AutoAdvance: stripego.Bool(in.CollectionMethod == ChargeAutomatically),
	}
	fin, err := c.api.Invoices.FinalizeInvoice(inv.ID, fp)
	if err != nil {
		return Invoice{}, classify(op+": finalize invoice", err)
	}
	return toInvoice(fin), nil
}

// validateInvoice checks in and normalises its currency and collection method.
func validateInvoice(in *InvoiceInput) error {
	const op = "issue invoice"
	in.Currency = strings.ToLower(in.Currency)
	if in.CollectionMethod == "" {
		in.CollectionMethod = ChargeAutomatically
	}
	switch {
	case in.InvoiceID == "":
		return invalidInput(op, "invoice id is required")
	case in.StripeCustomerID == "":
		return invalidInput(op, "stripe customer id is required")
	case len(in.Currency) != 3:
		return invalidInput(op, fmt.Sprintf("currency %q is not a three-letter code", in.Currency))
	case in.CollectionMethod != ChargeAutomatically && in.CollectionMethod != SendInvoice:
		return invalidInput(op, fmt.Sprintf("unknown collection method %q", in.CollectionMethod))
	case in.CollectionMethod == SendInvoice && in.DaysUntilDue <= 0:
		return invalidInput(op, "send_invoice needs days until due > 0")
	}
	return nil
}

// findInvoice returns the customer's recent invoice whose metadata carries invoiceID, or nil.
func (c *Client) findInvoice(ctx context.Context, customerID, invoiceID string) (*stripego.Invoice, error) {
	lp := &stripego.InvoiceListParams{
		Customer:     stripego.String(customerID),
		CreatedRange: &stripego.RangeQueryParams{GreaterThanOrEqual: time.Now().Add(-findLookback).Unix()},
	}
	lp.Context = ctx
	lp.Limit = stripego.Int64(100)
	it := c.api.Invoices.List(lp)
	for it.Next() {
		if inv := it.Invoice(); inv.Metadata[MetadataInvoiceID] == invoiceID {
			return inv, nil
		}
	}
	return nil, it.Err()
}

// sumLines returns the total of lines in minor units.
func sumLines(lines []InvoiceLine) int64 {
	var t int64
	for _, l := range lines {
		t += l.Amount
	}
	return t
}

// existingLines returns the amounts of the billcycle lines already on a draft invoice, by
// line number.
func (c *Client) existingLines(ctx context.Context, inv *stripego.Invoice) (map[int]int64, error) {
	have := map[int]int64{}
	lp := &stripego.InvoiceListLinesParams{Invoice: stripego.String(inv.ID)}
	lp.Context = ctx
	lp.Limit = stripego.Int64(100)
	it := c.api.Invoices.ListLines(lp)
	for it.Next() {
		li := it.InvoiceLineItem()
		if li.Metadata[MetadataInvoiceID] != inv.Metadata[MetadataInvoiceID] {
			continue
		}
		if n, err := strconv.Atoi(li.Metadata[MetadataLine]); err == nil {
			have[n] = li.Amount
		}
	}
	return have, it.Err()
}

// GetInvoice returns the current state of a Stripe invoice.
func (c *Client) GetInvoice(ctx context.Context, stripeInvoiceID string) (Invoice, error) {
	if stripeInvoiceID == "" {
		return Invoice{}, invalidInput("get invoice", "stripe invoice id is required")
	}
	p := &stripego.InvoiceParams{Params: params(ctx, "")}
	inv, err := c.api.Invoices.Get(stripeInvoiceID, p)
	if err != nil {
		return Invoice{}, classify("get invoice", err)
	}
	return toInvoice(inv), nil
}

// VoidInvoice voids an open invoice. idempotencyKey should derive from the caller's stable id
// for the void; empty means "stripe-invoice/<id>/void". Voiding an invoice that is already
// void succeeds.
func (c *Client) VoidInvoice(ctx context.Context, stripeInvoiceID, idempotencyKey string) (Invoice, error) {
	return c.transition(ctx, "void invoice", stripeInvoiceID, idempotencyKey, "void", StatusVoid,
		func(p stripego.Params) (*stripego.Invoice, error) {
			return c.api.Invoices.VoidInvoice(stripeInvoiceID, &stripego.InvoiceVoidInvoiceParams{Params: p})
		})
}

// MarkUncollectible marks an open invoice uncollectible (bad debt). idempotencyKey as for
// VoidInvoice, defaulting to "stripe-invoice/<id>/mark_uncollectible". Marking an invoice that
// is already uncollectible succeeds.
func (c *Client) MarkUncollectible(ctx context.Context, stripeInvoiceID, idempotencyKey string) (Invoice, error) {
	return c.transition(ctx, "mark invoice uncollectible", stripeInvoiceID, idempotencyKey, "mark_uncollectible", StatusUncollectible,
		func(p stripego.Params) (*stripego.Invoice, error) {
			return c.api.Invoices.MarkUncollectible(stripeInvoiceID, &stripego.InvoiceMarkUncollectibleParams{Params: p})
		})
}

// PayInvoice attempts to charge an open invoice now with the customer's default payment
// method. A decline is a permanent error of Type "card_error". idempotencyKey as for
// VoidInvoice, defaulting to "stripe-invoice/<id>/pay". Paying a paid invoice succeeds.
func (c *Client) PayInvoice(ctx context.Context, stripeInvoiceID, idempotencyKey string) (Invoice, error) {
	return c.transition(ctx, "pay invoice", stripeInvoiceID, idempotencyKey, "pay", StatusPaid,
		func(p stripego.Params) (*stripego.Invoice, error) {
			return c.api.Invoices.Pay(stripeInvoiceID, &stripego.InvoicePayParams{Params: p})
		})
}

// PayInvoiceOutOfBand records that an open invoice was paid outside Stripe (for example by
// bank transfer). idempotencyKey as for VoidInvoice, defaulting to
// "stripe-invoice/<id>/pay_out_of_band". Marking a paid invoice succeeds.
func (c *Client) PayInvoiceOutOfBand(ctx context.Context, stripeInvoiceID, idempotencyKey string) (Invoice, error) {
	return c.transition(ctx, "pay invoice out of band", stripeInvoiceID, idempotencyKey, "pay_out_of_band", StatusPaid,
		func(p stripego.Params) (*stripego.Invoice, error) {
			return c.api.Invoices.Pay(stripeInvoiceID, &stripego.InvoicePayParams{Params: p, PaidOutOfBand: stripego.Bool(true)})
		})
}

// transition runs a status-changing POST on an invoice. When Stripe refuses it permanently
// because the invoice already has the wanted status (a retry after the key expired, or a
// change made in the dashboard), it returns the invoice instead of the error.
func (c *Client) transition(ctx context.Context, op, id, key, action, want string,
	call func(stripego.Params) (*stripego.Invoice, error)) (Invoice, error) {
	if id == "" {
		return Invoice{}, invalidInput(op, "stripe invoice id is required")
	}
	if key == "" {
		key = IdempotencyKey("stripe-invoice", id, action)
	}
	inv, err := call(params(ctx, key))
	if err == nil {
		return toInvoice(inv), nil
	}
	cerr := classify(op, err)
	if IsRetryable(cerr) {
		return Invoice{}, cerr
	}
	if cur, gerr := c.GetInvoice(ctx, id); gerr == nil && cur.Status == want {
		return cur, nil
	}
	return Invoice{}, cerr
}

// toInvoice converts stripe-go's invoice.
func toInvoice(inv *stripego.Invoice) Invoice {
	return Invoice{
		ID:                 inv.ID,
		Status:             string(inv.Status),
		Number:             inv.Number,
		Currency:           string(inv.Currency),
		Total:              inv.Total,
		AmountDue:          inv.AmountDue,
		AmountPaid:         inv.AmountPaid,
		HostedURL:          inv.HostedInvoiceURL,
		BillcycleInvoiceID: inv.Metadata[MetadataInvoiceID],
	}
}

// lineDescription puts quantity and unit price into a line's text, since the Stripe item
// carries only the exact amount: "API requests (1200 × 0.0125 USD)".
func lineDescription(l InvoiceLine, currency string) string {
	if l.Quantity.IsZero() && l.UnitAmountDecimal.IsZero() {
		return l.Description
	}
	exp := currencyExponent(currency)
	unit := l.UnitAmountDecimal.Shift(-exp)
	us := unit.String()
	if unit.Exponent() >= -exp {
		us = unit.StringFixed(exp)
	}
	return fmt.Sprintf("%s (%s × %s %s)", l.Description, l.Quantity.String(), us, strings.ToUpper(currency))
}

// currencyExponent returns the number of minor-unit digits Stripe uses for a currency.
func currencyExponent(currency string) int32 {
	switch strings.ToLower(currency) {
	case "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf",
		"ugx", "vnd", "vuv", "xaf", "xof", "xpf":
		return 0
	case "bhd", "jod", "kwd", "omr", "tnd":
		return 3
	default:
		return 2
	}
}

// decimalPricing reports whether line l can go to Stripe as quantity ×
// unit_amount_decimal, so the Stripe invoice shows a sub-cent unit price the
// way Stripe prints its own: the quantity must be a positive whole number
// (Stripe's quantity is an integer), and Stripe's product, rounded to the
// minor unit, must be our line amount whatever rounding rule applies (so no
// product on a half unit) and the unit price must survive stripe-go's float64
// field unchanged. Other lines (tiers, packages, fractional quantities, the
// differences an early invoice bills) go as their exact amount.
func decimalPricing(l InvoiceLine) (qty int64, unit float64, ok bool) {
	if !l.Quantity.IsInteger() || !l.Quantity.IsPositive() || !l.UnitAmountDecimal.IsPositive() || !l.Quantity.BigInt().IsInt64() {
		return 0, 0, false
	}
	product := l.Quantity.Mul(l.UnitAmountDecimal)
	frac := product.Sub(product.Floor())
	if frac.Equal(decimal.New(5, -1)) || !product.Round(0).Equal(decimal.NewFromInt(l.Amount)) {
		return 0, 0, false
	}
	unit = l.UnitAmountDecimal.InexactFloat64()
	if strconv.FormatFloat(unit, 'f', -1, 64) != l.UnitAmountDecimal.String() || l.UnitAmountDecimal.Exponent() < -12 {
		return 0, 0, false
	}
	return l.Quantity.IntPart(), unit, true
}
