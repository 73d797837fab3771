package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Errors VerifySignature returns.
var (
	// ErrInvalidSignatureHeader means the header is missing or not "t=...,v1=...".
	ErrInvalidSignatureHeader = errors.New("invalid signature header")
	// ErrSignatureMismatch means no v1 signature matches the payload and secret.
	ErrSignatureMismatch = errors.New("signature mismatch")
	// ErrSignatureExpired means the timestamp is further from now than the tolerance.
	ErrSignatureExpired = errors.New("signature timestamp outside tolerance")
)

// Delivery is one webhook to send.
type Delivery struct {
	// URL is the receiver's endpoint; required.
	URL string
	// Secret signs the body; required.
	Secret string
	// IdempotencyKey identifies the event; the same on every attempt; required.
	IdempotencyKey string
	// Payload is marshalled to JSON as the body.
	Payload any
}

// Webhook sends signed JSON webhooks. It is safe for concurrent use.
type Webhook struct {
	http *http.Client
	now  func() time.Time
}

// NewWebhook returns a webhook sender; httpClient may be nil. Redirects are not followed.
func NewWebhook(httpClient *http.Client) *Webhook {
	return &Webhook{http: newHTTPClient(httpClient), now: time.Now}
}

// Send POSTs d.Payload as JSON to d.URL with the Billcycle-Signature and
// Billcycle-Idempotency-Key headers. Any 2xx answer is success.
func (w *Webhook) Send(ctx context.Context, d Delivery) error {
	const op = "send webhook"
	if d.URL == "" || d.Secret == "" || d.IdempotencyKey == "" {
		return &Error{Op: op, Body: "url, secret and idempotency key are required"}
	}
	body, err := json.Marshal(d.Payload)
	if err != nil {
		return &Error{Op: op, Err: fmt.Errorf("marshal payload: %w", err)}
	}
	h := http.Header{}
	h.Set(SignatureHeader, Sign(body, d.Secret, w.now()))
	h.Set(IdempotencyKeyHeader, d.IdempotencyKey)
	return post(ctx, w.http, op, d.URL, body, h)
}

// Sign returns the Billcycle-Signature header value for payload signed with secret at time t.
func Sign(payload []byte, secret string, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(payload, secret, ts))
}

func mac(payload []byte, secret, ts string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(payload)
	return m.Sum(nil)
}

// VerifySignature checks a Billcycle-Signature header against the raw request body and the
// endpoint's secret. It accepts the header if any v1 value matches (several appear while a
// secret is rotated) and its timestamp is within tolerance of now; tolerance <= 0 skips the
// age check.
func VerifySignature(payload []byte, header, secret string, tolerance time.Duration) error {
	return verifyAt(payload, header, secret, tolerance, time.Now())
}

func verifyAt(payload []byte, header, secret string, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrInvalidSignatureHeader
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if s, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, s)
			}
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrInvalidSignatureHeader
	}
	want := mac(payload, secret, ts)
	matched := false
	for _, s := range sigs {
		matched = matched || hmac.Equal(s, want)
	}
	if !matched {
		return ErrSignatureMismatch
	}
	if tolerance > 0 {
		age := now.Sub(time.Unix(unix, 0))
		if age > tolerance || age < -tolerance {
			return fmt.Errorf("%w: signed %v ago", ErrSignatureExpired, age.Round(time.Second))
		}
	}
	return nil
}
