package stripe_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/billcycle/billcycle/integrations/stripe"
	"github.com/billcycle/billcycle/integrations/stripe/stripemock"
)

// The contract tests run the client against stripe-mock, which validates every request against
// Stripe's OpenAPI spec for API 2023-10-16 (unknown or missing parameters are 400s) and answers
// with fixtures. One server is shared by the package's tests.

var (
	mockOnce sync.Once
	mockURL  string
	mockStop func()
	mockErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if mockStop != nil {
		mockStop()
	}
	os.Exit(code)
}

func stripeMock(t *testing.T) string {
	t.Helper()
	mockOnce.Do(func() { mockURL, mockStop, mockErr = stripemock.StartProcess() })
	if mockErr != nil {
		t.Skipf("stripe-mock unavailable (set STRIPE_MOCK_URL or STRIPE_MOCK_BIN): %v", mockErr)
	}
	return mockURL
}

// keyRecorder records the Idempotency-Key of every POST and the key stripe-mock echoes back.
type keyRecorder struct {
	mu   sync.Mutex
	sent []string
	echo []string
}

func (k *keyRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if r.Method == http.MethodPost {
		k.mu.Lock()
		k.sent = append(k.sent, r.Header.Get("Idempotency-Key"))
		if err == nil {
			k.echo = append(k.echo, resp.Header.Get("Idempotency-Key"))
		}
		k.mu.Unlock()
	}
	return resp, err
}

func TestContractInvoiceLifecycle(t *testing.T) {
	url := stripeMock(t)
	rec := &keyRecorder{}
	c := stripe.New("sk_test_123", url, &http.Client{Transport: rec})
	ctx := context.Background()

	cus, err := c.EnsureCustomer(ctx, stripe.CustomerInput{CustomerID: "cust_c", Email: "c@example.com", Name: "C",
		Metadata: map[string]string{"plan": "pro"}})
	if err != nil {
		t.Fatalf("EnsureCustomer: %v", err)
	}
	if !strings.HasPrefix(cus, "cus_") {
		t.Errorf("EnsureCustomer = %q, want a cus_ id", cus)
	}

	for _, method := range []string{stripe.ChargeAutomatically, stripe.SendInvoice} {
		t.Run(method, func(t *testing.T) {
			in := invoiceInput("inv_c_"+method, cus)
			in.CollectionMethod = method
			if method == stripe.SendInvoice {
				in.DaysUntilDue = 30
			}
			inv, err := c.IssueInvoice(ctx, in)
			if err != nil {
				t.Fatalf("IssueInvoice: %v", err)
			}
			if !strings.HasPrefix(inv.ID, "in_") || inv.Status == "" {
				t.Errorf("IssueInvoice = %+v, want an in_ id and a status", inv)
			}
		})
	}

	ops := []struct {
		name string
		call func(context.Context, string, string) (stripe.Invoice, error)
	}{
		{"void", c.VoidInvoice},
		{"mark uncollectible", c.MarkUncollectible},
		{"pay", c.PayInvoice},
		{"pay out of band", c.PayInvoiceOutOfBand},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			inv, err := op.call(ctx, "in_123", "")
			if err != nil || !strings.HasPrefix(inv.ID, "in_") {
				t.Errorf("%s = %+v, %v, want an in_ invoice", op.name, inv, err)
			}
		})
	}
	got, err := c.GetInvoice(ctx, "in_123")
	if err != nil || !strings.HasPrefix(got.ID, "in_") {
		t.Errorf("GetInvoice = %+v, %v, want an in_ invoice", got, err)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	wantPrefixes := []string{"customer/cust_c", "invoice/inv_c_charge_automatically", "invoice/inv_c_send_invoice", "stripe-invoice/in_123/"}
	for i, k := range rec.sent {
		ok := false
		for _, p := range wantPrefixes {
			ok = ok || strings.HasPrefix(k, p)
		}
		if !ok {
			t.Errorf("POST %d sent Idempotency-Key %q, want one derived from billcycle ids", i, k)
		}
		if i < len(rec.echo) && rec.echo[i] != k {
			t.Errorf("POST %d: stripe-mock echoed key %q, want %q", i, rec.echo[i], k)
		}
	}
	// customer, 2 × (invoice, 3 lines, finalize), 4 transitions
	if want := 1 + 2*5 + 4; len(rec.sent) != want {
		t.Errorf("sent %d POSTs, want %d", len(rec.sent), want)
	}
}

func TestContractBadAPIKeyIsPermanent(t *testing.T) {
	url := stripeMock(t)
	c := stripe.New("not-a-key", url, nil)
	_, err := c.GetInvoice(context.Background(), "in_123")
	var se *stripe.Error
	if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized || stripe.IsRetryable(err) {
		t.Errorf("GetInvoice(bad key) = %v, want permanent 401", err)
	}
}
