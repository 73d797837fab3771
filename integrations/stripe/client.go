// Package stripe issues billcycle's invoices in Stripe: it creates customers and invoices with
// their line items, finalizes, voids and settles them, and classifies Stripe's errors as
// retryable or permanent.
//
// Every POST carries an explicit Idempotency-Key derived from a stable billcycle id, never
// stripe-go's random one, so a retried call (for example a retried Temporal activity) reuses
// the object Stripe created the first time. Facts about Stripe's idempotency layer that shape
// this package:
//
//   - Stripe stores the status and body of the first request for a key once the endpoint has
//     started executing and replays them for later requests with that key, including 4xx and
//     500 responses; keys are pruned after at least 24 hours.
//   - Reusing a key with different parameters is a 400 idempotency_error (permanent: the caller
//     changed the request under a stable id). A request that races another in-flight request
//     with the same key gets a 409 (retryable).
//
// Because keys expire, IssueInvoice and EnsureCustomer also look for the object they would
// create (by billcycle metadata) before creating it, so a retry after a day does not duplicate.
package stripe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// Metadata keys billcycle writes on Stripe objects.
const (
	// MetadataCustomerID holds the billcycle customer id on a Stripe customer.
	MetadataCustomerID = "billcycle_customer_id"
	// MetadataInvoiceID holds the billcycle invoice id on a Stripe invoice and its items.
	MetadataInvoiceID = "billcycle_invoice_id"
	// MetadataLine holds the zero-based position of an invoice item in billcycle's invoice.
	MetadataLine = "billcycle_line"
)

// maxIdempotencyKeyLen is Stripe's limit on the Idempotency-Key header.
const maxIdempotencyKeyLen = 255

// defaultTimeout bounds one HTTP request when the caller supplies no http.Client.
const defaultTimeout = 60 * time.Second

// Client calls the Stripe API. It is safe for concurrent use.
type Client struct {
	api *client.API
}

// New returns a Client that authenticates with apiKey. baseURL is the API root without /v1
// (for example a stripe-mock or fake server); empty means the real Stripe API. httpClient may
// be nil. stripe-go's own network retries are disabled: callers retry whole operations, which
// is safe because every POST carries a stable idempotency key.
func New(apiKey, baseURL string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: defaultTimeout}
	}
	cfg := &stripego.BackendConfig{
		MaxNetworkRetries: stripego.Int64(0),
		HTTPClient:        httpClient,
		// Errors are returned to the caller with full detail; the library's own log would
		// only duplicate them.
		LeveledLogger: &stripego.LeveledLogger{Level: stripego.LevelNull},
	}
	if baseURL != "" {
		cfg.URL = stripego.String(strings.TrimRight(baseURL, "/"))
	}
	return &Client{api: client.New(apiKey, stripego.NewBackendsWithConfig(cfg))}
}

// IdempotencyKey joins parts with "/" into a Stripe idempotency key. Keys longer than Stripe's
// 255-character limit keep a readable prefix and end in a SHA-256 of the whole key, so distinct
// inputs still give distinct keys.
func IdempotencyKey(parts ...string) string {
	k := strings.Join(parts, "/")
	if len(k) <= maxIdempotencyKeyLen {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	h := hex.EncodeToString(sum[:])
	return k[:maxIdempotencyKeyLen-len(h)-1] + "/" + h
}

// params returns stripe-go request parameters bound to ctx with the given idempotency key.
func params(ctx context.Context, key string) stripego.Params {
	p := stripego.Params{Context: ctx}
	if key != "" {
		p.IdempotencyKey = stripego.String(key)
	}
	return p
}
