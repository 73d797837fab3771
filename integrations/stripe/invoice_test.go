package stripe_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/integrations/stripe"
	"github.com/billcycle/billcycle/integrations/stripe/stripefake"
)

const testKey = "sk_test_billcycle"

// setup returns a client talking to a fresh fake and a Stripe customer in it.
func setup(t *testing.T) (*stripe.Client, *stripefake.Server, string) {
	t.Helper()
	fake := stripefake.New(t)
	c := stripe.New(testKey, fake.URL, nil)
	cus, err := c.EnsureCustomer(context.Background(), stripe.CustomerInput{
		CustomerID: "cust_1", Email: "ada@example.com", Name: "Ada",
	})
	if err != nil {
		t.Fatalf("EnsureCustomer: %v", err)
	}
	return c, fake, cus
}

func invoiceInput(id, customer string) stripe.InvoiceInput {
	return stripe.InvoiceInput{
		InvoiceID:        id,
		StripeCustomerID: customer,
		Currency:         "USD",
		Description:      "Usage for March",
		Lines: []stripe.InvoiceLine{
			{Description: "API requests", Quantity: decimal.NewFromInt(1_234_567), UnitAmountDecimal: decimal.RequireFromString("0.0125"), Amount: 15432},
			{Description: "Platform fee", Quantity: decimal.NewFromInt(1), UnitAmountDecimal: decimal.NewFromInt(50000), Amount: 50000},
			{Description: "Credit", Amount: -2500},
		},
		Metadata: map[string]string{"period": "2026-03"},
	}
}

func sum(lines []stripe.InvoiceLine) int64 {
	var t int64
	for _, l := range lines {
		t += l.Amount
	}
	return t
}

// checkInvoice asserts the fake holds exactly one invoice for in, matching it line by line.
func checkInvoice(t *testing.T, fake *stripefake.Server, in stripe.InvoiceInput, wantStatus string) stripefake.Invoice {
	t.Helper()
	var found []stripefake.Invoice
	for _, inv := range fake.Invoices() {
		if inv.Metadata[stripe.MetadataInvoiceID] == in.InvoiceID {
			found = append(found, inv)
		}
	}
	if len(found) != 1 {
		t.Fatalf("fake holds %d invoices for %s, want 1", len(found), in.InvoiceID)
	}
	inv := found[0]
	if inv.Status != wantStatus {
		t.Errorf("invoice %s status = %q, want %q", in.InvoiceID, inv.Status, wantStatus)
	}
	if len(inv.Items) != len(in.Lines) {
		t.Fatalf("invoice %s has %d items, want %d", in.InvoiceID, len(inv.Items), len(in.Lines))
	}
	for n, l := range in.Lines {
		it := inv.Items[n]
		if it.Amount != l.Amount || it.Metadata[stripe.MetadataLine] != fmt.Sprint(n) {
			t.Errorf("item %d = amount %d line %q, want amount %d line %d", n, it.Amount, it.Metadata[stripe.MetadataLine], l.Amount, n)
		}
		if !strings.HasPrefix(it.Description, l.Description) {
			t.Errorf("item %d description = %q, want prefix %q", n, it.Description, l.Description)
		}
	}
	if inv.Total() != sum(in.Lines) {
		t.Errorf("invoice total = %d, want %d", inv.Total(), sum(in.Lines))
	}
	return inv
}

func TestIssueInvoiceOnceAcrossRetries(t *testing.T) {
	ctx := context.Background()
	c, fake, cus := setup(t)
	in := invoiceInput("inv_1", cus)

	first, err := c.IssueInvoice(ctx, in)
	if err != nil {
		t.Fatalf("IssueInvoice: %v", err)
	}
	if first.Status != stripe.StatusOpen || first.Number == "" || first.HostedURL == "" {
		t.Errorf("IssueInvoice = %+v, want open with number and hosted URL", first)
	}
	if first.Total != sum(in.Lines) || first.AmountDue != sum(in.Lines) {
		t.Errorf("IssueInvoice total, due = %d, %d, want %d", first.Total, first.AmountDue, sum(in.Lines))
	}
	if first.Currency != "usd" || first.BillcycleInvoiceID != "inv_1" {
		t.Errorf("IssueInvoice currency, billcycle id = %q, %q, want usd, inv_1", first.Currency, first.BillcycleInvoiceID)
	}

	again, err := c.IssueInvoice(ctx, in)
	if err != nil {
		t.Fatalf("IssueInvoice again: %v", err)
	}
	if again != first {
		t.Errorf("IssueInvoice again = %+v, want %+v", again, first)
	}
	inv := checkInvoice(t, fake, in, stripe.StatusOpen)
	if !inv.AutoAdvance || inv.Metadata["period"] != "2026-03" {
		t.Errorf("invoice auto_advance, metadata = %v, %v, want true and period 2026-03", inv.AutoAdvance, inv.Metadata)
	}

	other := invoiceInput("inv_2", cus)
	second, err := c.IssueInvoice(ctx, other)
	if err != nil {
		t.Fatalf("IssueInvoice inv_2: %v", err)
	}
	if second.ID == first.ID {
		t.Errorf("IssueInvoice inv_2 id = %s, same as inv_1", second.ID)
	}
	checkInvoice(t, fake, other, stripe.StatusOpen)
	if n := len(fake.Invoices()); n != 2 {
		t.Errorf("fake holds %d invoices, want 2", n)
	}
}

func TestIssueInvoiceIdempotencyKeys(t *testing.T) {
	c, fake, cus := setup(t)
	in := invoiceInput("inv_keys", cus)
	if _, err := c.IssueInvoice(context.Background(), in); err != nil {
		t.Fatalf("IssueInvoice: %v", err)
	}
	var got []string
	for _, r := range fake.Requests() {
		if r.Method == "POST" {
			got = append(got, r.IdempotencyKey)
		}
	}
	want := []string{"customer/cust_1", "invoice/inv_keys", "invoice/inv_keys/line/0", "invoice/inv_keys/line/1",
		"invoice/inv_keys/line/2", "invoice/inv_keys/finalize"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("POST idempotency keys = %v, want %v", got, want)
	}
}

func TestIssueInvoiceResumesAfterFailure(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		status  int
	}{
		{"create invoice 500", "/v1/invoices", 500},
		{"line 503", "/v1/invoiceitems", 503},
		{"finalize 429", "/v1/invoices/*/finalize", 429},
		{"line list 502", "/v1/invoices/*/lines", 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c, fake, cus := setup(t)
			in := invoiceInput("inv_f", cus)
			fake.FailNext(tt.pattern, tt.status)
			_, err := c.IssueInvoice(ctx, in)
			if err == nil {
				t.Fatalf("IssueInvoice with %s failing = nil error, want error", tt.pattern)
			}
			if !stripe.IsRetryable(err) {
				t.Errorf("IsRetryable(%v) = false, want true", err)
			}
			var se *stripe.Error
			if !errors.As(err, &se) || se.StatusCode != tt.status {
				t.Errorf("error = %v, want *stripe.Error with status %d", err, tt.status)
			}
			got, err := c.IssueInvoice(ctx, in)
			if err != nil {
				t.Fatalf("IssueInvoice retry: %v", err)
			}
			if got.Status != stripe.StatusOpen {
				t.Errorf("IssueInvoice retry status = %q, want open", got.Status)
			}
			checkInvoice(t, fake, in, stripe.StatusOpen)
		})
	}
}

// TestIssueInvoiceLostResponse models an activity whose Stripe call succeeds while the worker
// gives up on it: the retry must neither duplicate the line nor lose it.
func TestIssueInvoiceLostResponse(t *testing.T) {
	c, fake, cus := setup(t)
	in := invoiceInput("inv_lost", cus)
	arrived, release := fake.BlockNext("/v1/invoiceitems")

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.IssueInvoice(ctx, in)
		errc <- err
	}()
	<-arrived
	cancel()
	err := <-errc
	if err == nil || !stripe.IsRetryable(err) {
		t.Fatalf("IssueInvoice cancelled mid-line = %v, want retryable error", err)
	}

	// While Stripe still works on the first request its key is in flight: 409, retryable.
	_, err = c.IssueInvoice(context.Background(), in)
	var se *stripe.Error
	if !errors.As(err, &se) || se.StatusCode != 409 || !stripe.IsRetryable(err) {
		t.Fatalf("IssueInvoice during in-flight line = %v, want retryable 409", err)
	}

	release()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err = c.IssueInvoice(context.Background(), in)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // the released request may still be finishing
	}
	if err != nil {
		t.Fatalf("IssueInvoice after release: %v", err)
	}
	checkInvoice(t, fake, in, stripe.StatusOpen)
}

// TestIssueInvoiceAfterKeysExpire covers retries later than Stripe's 24-hour key retention.
func TestIssueInvoiceAfterKeysExpire(t *testing.T) {
	ctx := context.Background()
	c, fake, cus := setup(t)
	in := invoiceInput("inv_old", cus)

	fake.FailNext("/v1/invoices/*/finalize", 500)
	if _, err := c.IssueInvoice(ctx, in); err == nil {
		t.Fatal("IssueInvoice with failing finalize = nil error, want error")
	}
	fake.ForgetIdempotencyKeys()
	if _, err := c.IssueInvoice(ctx, in); err != nil {
		t.Fatalf("IssueInvoice after keys expired: %v", err)
	}
	checkInvoice(t, fake, in, stripe.StatusOpen)

	fake.ForgetIdempotencyKeys()
	if _, err := c.IssueInvoice(ctx, in); err != nil {
		t.Fatalf("IssueInvoice of issued invoice after keys expired: %v", err)
	}
	checkInvoice(t, fake, in, stripe.StatusOpen)
}

func TestIssueInvoiceChangedLines(t *testing.T) {
	ctx := context.Background()
	c, fake, cus := setup(t)
	in := invoiceInput("inv_chg", cus)
	fake.FailNext("/v1/invoices/*/finalize", 500)
	if _, err := c.IssueInvoice(ctx, in); err == nil {
		t.Fatal("IssueInvoice with failing finalize = nil error, want error")
	}
	changed := invoiceInput("inv_chg", cus)
	changed.Lines[1].Amount++
	// The draft's items are found by metadata and kept, so the change must not pass silently.
	_, err := c.IssueInvoice(ctx, changed)
	if err == nil {
		t.Fatal("IssueInvoice with changed lines = nil error, want error")
	}
	if stripe.IsRetryable(err) {
		t.Errorf("IsRetryable(%v) = true, want false", err)
	}
}

func TestIssueInvoiceSendInvoice(t *testing.T) {
	c, fake, cus := setup(t)
	in := invoiceInput("inv_send", cus)
	in.CollectionMethod = stripe.SendInvoice
	in.DaysUntilDue = 14
	if _, err := c.IssueInvoice(context.Background(), in); err != nil {
		t.Fatalf("IssueInvoice: %v", err)
	}
	inv := checkInvoice(t, fake, in, stripe.StatusOpen)
	if inv.CollectionMethod != stripe.SendInvoice || inv.DaysUntilDue != 14 || inv.AutoAdvance {
		t.Errorf("invoice method, days, auto_advance = %s, %d, %v, want send_invoice, 14, false",
			inv.CollectionMethod, inv.DaysUntilDue, inv.AutoAdvance)
	}
}

func TestIssueInvoiceZeroTotalIsPaid(t *testing.T) {
	c, fake, cus := setup(t)
	in := stripe.InvoiceInput{InvoiceID: "inv_zero", StripeCustomerID: cus, Currency: "eur",
		Lines: []stripe.InvoiceLine{{Description: "Free tier", Amount: 0}}}
	got, err := c.IssueInvoice(context.Background(), in)
	if err != nil {
		t.Fatalf("IssueInvoice: %v", err)
	}
	if got.Status != stripe.StatusPaid {
		t.Errorf("IssueInvoice(zero total) status = %q, want paid", got.Status)
	}
	checkInvoice(t, fake, in, stripe.StatusPaid)
}

func TestIssueInvoiceInvalidInput(t *testing.T) {
	c, fake, cus := setup(t)
	base := invoiceInput("inv_bad", cus)
	tests := []struct {
		name   string
		modify func(*stripe.InvoiceInput)
	}{
		{"no invoice id", func(in *stripe.InvoiceInput) { in.InvoiceID = "" }},
		{"no customer", func(in *stripe.InvoiceInput) { in.StripeCustomerID = "" }},
		{"bad currency", func(in *stripe.InvoiceInput) { in.Currency = "dollars" }},
		{"bad method", func(in *stripe.InvoiceInput) { in.CollectionMethod = "barter" }},
		{"send without due days", func(in *stripe.InvoiceInput) { in.CollectionMethod = stripe.SendInvoice }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			tt.modify(&in)
			_, err := c.IssueInvoice(context.Background(), in)
			if err == nil || stripe.IsRetryable(err) {
				t.Errorf("IssueInvoice(%s) = %v, want permanent error", tt.name, err)
			}
		})
	}
	if n := len(fake.Invoices()); n != 0 {
		t.Errorf("fake holds %d invoices after invalid input, want 0", n)
	}
}

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		status    int
		retryable bool
	}{
		{400, false}, {401, false}, {402, false}, {403, false}, {404, false},
		{409, true}, {429, true}, {500, true}, {502, true}, {503, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			c, fake, _ := setup(t)
			fake.FailNext("/v1/invoices/*", tt.status)
			_, err := c.GetInvoice(context.Background(), "in_any")
			if err == nil {
				t.Fatalf("GetInvoice with injected %d = nil error", tt.status)
			}
			if got := stripe.IsRetryable(err); got != tt.retryable {
				t.Errorf("IsRetryable(%v) = %v, want %v", err, got, tt.retryable)
			}
		})
	}
}

func TestUnknownCustomerIsPermanent(t *testing.T) {
	c, _, _ := setup(t)
	_, err := c.IssueInvoice(context.Background(), invoiceInput("inv_nocus", "cus_missing"))
	var se *stripe.Error
	if !errors.As(err, &se) || se.Code != "resource_missing" || stripe.IsRetryable(err) {
		t.Errorf("IssueInvoice(unknown customer) = %v, want permanent resource_missing", err)
	}
}

func TestIsRetryableUnclassified(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("elsewhere"), true},
		{fmt.Errorf("wrapped: %w", &stripe.Error{Retryable: false}), false},
		{fmt.Errorf("wrapped: %w", &stripe.Error{Retryable: true}), true},
	}
	for _, tt := range tests {
		if got := stripe.IsRetryable(tt.err); got != tt.want {
			t.Errorf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestNetworkErrorIsRetryable(t *testing.T) {
	c := stripe.New(testKey, "http://127.0.0.1:1", nil)
	_, err := c.GetInvoice(context.Background(), "in_1")
	if err == nil || !stripe.IsRetryable(err) {
		t.Errorf("GetInvoice(unreachable) = %v, want retryable error", err)
	}
}

func TestInvoiceTransitions(t *testing.T) {
	tests := []struct {
		name string
		call func(*stripe.Client, context.Context, string, string) (stripe.Invoice, error)
		want string
	}{
		{"void", (*stripe.Client).VoidInvoice, stripe.StatusVoid},
		{"uncollectible", (*stripe.Client).MarkUncollectible, stripe.StatusUncollectible},
		{"pay out of band", (*stripe.Client).PayInvoiceOutOfBand, stripe.StatusPaid},
		{"pay", (*stripe.Client).PayInvoice, stripe.StatusPaid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c, fake, cus := setup(t)
			inv, err := c.IssueInvoice(ctx, invoiceInput("inv_t", cus))
			if err != nil {
				t.Fatalf("IssueInvoice: %v", err)
			}
			key := "inv_t/" + tt.name
			got, err := tt.call(c, ctx, inv.ID, key)
			if err != nil || got.Status != tt.want {
				t.Fatalf("%s = %+v, %v, want status %s", tt.name, got, err, tt.want)
			}
			// A retry within 24 hours is replayed; after the key expired Stripe refuses the
			// transition, and the client sees the invoice already has the wanted status.
			for _, forget := range []bool{false, true} {
				if forget {
					fake.ForgetIdempotencyKeys()
				}
				got, err = tt.call(c, ctx, inv.ID, key)
				if err != nil || got.Status != tt.want {
					t.Errorf("%s again (keys forgotten %v) = %+v, %v, want status %s", tt.name, forget, got, err, tt.want)
				}
			}
			cur, err := c.GetInvoice(ctx, inv.ID)
			if err != nil || cur.Status != tt.want {
				t.Errorf("GetInvoice = %+v, %v, want status %s", cur, err, tt.want)
			}
		})
	}
}

func TestTransitionFromWrongStatusIsPermanent(t *testing.T) {
	ctx := context.Background()
	c, _, cus := setup(t)
	inv, err := c.IssueInvoice(ctx, invoiceInput("inv_w", cus))
	if err != nil {
		t.Fatalf("IssueInvoice: %v", err)
	}
	if _, err := c.VoidInvoice(ctx, inv.ID, ""); err != nil {
		t.Fatalf("VoidInvoice: %v", err)
	}
	_, err = c.PayInvoiceOutOfBand(ctx, inv.ID, "")
	if err == nil || stripe.IsRetryable(err) {
		t.Errorf("PayInvoiceOutOfBand(void invoice) = %v, want permanent error", err)
	}
}

func TestEnsureCustomer(t *testing.T) {
	ctx := context.Background()
	c, fake, first := setup(t)
	in := stripe.CustomerInput{CustomerID: "cust_1", Email: "ada@example.com", Name: "Ada"}
	again, err := c.EnsureCustomer(ctx, in)
	if err != nil || again != first {
		t.Errorf("EnsureCustomer again = %q, %v, want %q", again, err, first)
	}
	fake.ForgetIdempotencyKeys()
	later, err := c.EnsureCustomer(ctx, in)
	if err != nil || later != first {
		t.Errorf("EnsureCustomer after keys expired = %q, %v, want %q", later, err, first)
	}
	other, err := c.EnsureCustomer(ctx, stripe.CustomerInput{CustomerID: "cust_2", Email: "ada@example.com", Metadata: map[string]string{"plan": "pro"}})
	if err != nil || other == first {
		t.Errorf("EnsureCustomer(cust_2, same email) = %q, %v, want a new customer", other, err)
	}
	cs := fake.Customers()
	if len(cs) != 2 {
		t.Fatalf("fake holds %d customers, want 2", len(cs))
	}
	if cs[0].Metadata[stripe.MetadataCustomerID] != "cust_1" || cs[0].Email != "ada@example.com" || cs[0].Name != "Ada" {
		t.Errorf("customer 0 = %+v, want cust_1 ada@example.com Ada", cs[0])
	}
	if cs[1].Metadata["plan"] != "pro" || cs[1].Metadata[stripe.MetadataCustomerID] != "cust_2" {
		t.Errorf("customer 1 metadata = %v, want plan pro and cust_2", cs[1].Metadata)
	}
	if _, err := c.EnsureCustomer(ctx, stripe.CustomerInput{}); err == nil || stripe.IsRetryable(err) {
		t.Errorf("EnsureCustomer(no id) = %v, want permanent error", err)
	}
}

func TestIdempotencyKey(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		parts []string
		want  string
	}{
		{[]string{"invoice", "inv_1"}, "invoice/inv_1"},
		{[]string{"invoice", "inv_1", "line", "0"}, "invoice/inv_1/line/0"},
	}
	for _, tt := range tests {
		if got := stripe.IdempotencyKey(tt.parts...); got != tt.want {
			t.Errorf("IdempotencyKey(%q) = %q, want %q", tt.parts, got, tt.want)
		}
	}
	a, b := stripe.IdempotencyKey("invoice", long, "1"), stripe.IdempotencyKey("invoice", long, "2")
	if len(a) > 255 || len(b) > 255 || a == b {
		t.Errorf("IdempotencyKey(long) = %d and %d chars, equal %v; want <= 255 and distinct", len(a), len(b), a == b)
	}
}

// TestSubCentPricesReachStripeAsDecimals checks what Stripe receives: the
// sub-cent unit price through quantity and unit_amount_decimal, so Stripe's
// invoice shows it, and the credit as a plain amount; Stripe's total is ours.
func TestSubCentPricesReachStripeAsDecimals(t *testing.T) {
	c, fake, cus := setup(t)
	in := invoiceInput("inv_decimal", cus)
	if _, err := c.IssueInvoice(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	var forms []url.Values
	for _, r := range fake.Requests() {
		if r.Method == "POST" && r.Path == "/v1/invoiceitems" {
			forms = append(forms, r.Form)
		}
	}
	if len(forms) != 3 {
		t.Fatalf("invoice item requests = %d, want 3", len(forms))
	}
	if f := forms[0]; f.Get("unit_amount_decimal") != "0.0125" || f.Get("quantity") != "1234567" || f.Has("amount") {
		t.Errorf("API requests line sent as %v, want quantity 1234567 × unit_amount_decimal 0.0125 and no amount", f)
	}
	if f := forms[2]; f.Get("amount") != "-2500" || f.Has("unit_amount_decimal") {
		t.Errorf("credit line sent as %v, want amount -2500", f)
	}
	inv := checkInvoice(t, fake, in, "open")
	if inv.Total() != sum(in.Lines) {
		t.Errorf("Stripe total = %d, want our total %d", inv.Total(), sum(in.Lines))
	}
}
