// Package notify delivers billcycle's outbound notifications: Slack incoming-webhook messages
// and signed JSON webhooks (access changes, alerts) to customer endpoints, with failures
// classified as retryable or permanent.
//
// Webhooks carry two headers:
//
//	Billcycle-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//	Billcycle-Idempotency-Key: <key>
//
// The key is the same on every attempt of one delivery, so receivers can drop duplicates; the
// signature is recomputed with a fresh timestamp on each attempt. Receivers check it with
// VerifySignature.
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Header names set on webhook deliveries.
const (
	SignatureHeader      = "Billcycle-Signature"
	IdempotencyKeyHeader = "Billcycle-Idempotency-Key"
)

// maxErrorBody bounds how much of a failed response is kept in an Error.
const maxErrorBody = 512

// Error is a failed delivery. Every error this package's senders return is, or wraps, an *Error.
type Error struct {
	// Op says what failed, for example "post slack message".
	Op string
	// StatusCode is the receiver's HTTP status; 0 when no answer arrived.
	StatusCode int
	// Body is the start of the receiver's answer, for example Slack's "channel_not_found".
	Body string
	// Retryable reports whether delivering again may succeed.
	Retryable bool
	// Err is the underlying error, if any.
	Err error
}

// Error describes the failure.
func (e *Error) Error() string {
	s := "notify: " + e.Op
	if e.StatusCode != 0 {
		s += fmt.Sprintf(": status %d", e.StatusCode)
	}
	if e.Body != "" {
		s += ": " + e.Body
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err is worth retrying: 408, 425, 429 and 5xx answers, network
// failures and context deadlines are; other non-2xx answers (including redirects, which are not
// followed) and invalid input are not. Errors this package did not classify count as
// retryable; nil does not.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Retryable
	}
	return true
}

// newHTTPClient returns a client that does not follow redirects.
func newHTTPClient(c *http.Client) *http.Client {
	if c == nil {
		c = &http.Client{Timeout: 15 * time.Second}
	} else {
		cp := *c
		c = &cp
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// post sends body as JSON and classifies the answer.
func post(ctx context.Context, c *http.Client, op, url string, body []byte, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return &Error{Op: op, Err: err}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "billcycle-notify/1")
	resp, err := c.Do(req)
	if err != nil {
		return &Error{Op: op, Retryable: true, Err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return &Error{
		Op:         op,
		StatusCode: resp.StatusCode,
		Body:       strings.TrimSpace(string(b)),
		Retryable:  retryableStatus(resp.StatusCode),
	}
}

func retryableStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return status >= 500
}
