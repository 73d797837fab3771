package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// receiver records requests and answers with the next queued status (200 when none).
type receiver struct {
	mu       sync.Mutex
	statuses []int
	bodies   [][]byte
	headers  []http.Header
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.bodies = append(rc.bodies, b)
	rc.headers = append(rc.headers, r.Header.Clone())
	status := http.StatusOK
	if len(rc.statuses) > 0 {
		status, rc.statuses = rc.statuses[0], rc.statuses[1:]
	}
	rc.mu.Unlock()
	if status == http.StatusFound {
		http.Redirect(w, r, "/elsewhere", status)
		return
	}
	w.WriteHeader(status)
	fmt.Fprint(w, http.StatusText(status))
}

func TestPostSlack(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := NewSlack(nil)
	if err := s.PostSlack(context.Background(), srv.URL, "Invoice *inv_1* issued: $12.34"); err != nil {
		t.Fatalf("PostSlack: %v", err)
	}
	var got map[string]string
	if err := json.Unmarshal(rc.bodies[0], &got); err != nil || got["text"] != "Invoice *inv_1* issued: $12.34" || len(got) != 1 {
		t.Errorf("Slack body = %s (%v), want {\"text\": ...}", rc.bodies[0], err)
	}
	if ct := rc.headers[0].Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
}

func TestClassification(t *testing.T) {
	tests := []struct {
		status    int
		retryable bool
	}{
		{302, false}, {400, false}, {403, false}, {404, false}, {410, false},
		{408, true}, {429, true}, {500, true}, {503, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			rc := &receiver{statuses: []int{tt.status, tt.status}}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			errs := map[string]error{
				"slack":   NewSlack(nil).PostSlack(context.Background(), srv.URL, "hi"),
				"webhook": NewWebhook(nil).Send(context.Background(), Delivery{URL: srv.URL, Secret: "s", IdempotencyKey: "k", Payload: 1}),
			}
			for name, err := range errs {
				var e *Error
				if !errors.As(err, &e) || e.StatusCode != tt.status {
					t.Fatalf("%s = %v, want *Error with status %d", name, err, tt.status)
				}
				if got := IsRetryable(err); got != tt.retryable {
					t.Errorf("%s: IsRetryable(%v) = %v, want %v", name, err, got, tt.retryable)
				}
			}
			if n := len(rc.bodies); n != 2 {
				t.Errorf("receiver saw %d requests, want 2 (redirects not followed)", n)
			}
		})
	}
}

func TestNetworkErrorRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	if err := NewSlack(nil).PostSlack(context.Background(), url, "hi"); err == nil || !IsRetryable(err) {
		t.Errorf("PostSlack(closed server) = %v, want retryable error", err)
	}
}

func TestInvalidInputPermanent(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"slack no url", NewSlack(nil).PostSlack(context.Background(), "", "hi")},
		{"webhook no secret", NewWebhook(nil).Send(context.Background(), Delivery{URL: "http://x", IdempotencyKey: "k"})},
		{"webhook no key", NewWebhook(nil).Send(context.Background(), Delivery{URL: "http://x", Secret: "s"})},
		{"webhook bad payload", NewWebhook(nil).Send(context.Background(), Delivery{URL: "http://x", Secret: "s", IdempotencyKey: "k", Payload: func() {}})},
	}
	for _, tt := range tests {
		if tt.err == nil || IsRetryable(tt.err) {
			t.Errorf("%s = %v, want permanent error", tt.name, tt.err)
		}
	}
}

func TestWebhookSignedAndVerifiable(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	w := NewWebhook(nil)
	payload := map[string]any{"type": "access.suspended", "customer_id": "cust_1"}
	d := Delivery{URL: srv.URL, Secret: "whsec_1", IdempotencyKey: "access/cust_1/3", Payload: payload}
	for range 2 {
		if err := w.Send(context.Background(), d); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	for i, h := range rc.headers {
		if got := h.Get(IdempotencyKeyHeader); got != "access/cust_1/3" {
			t.Errorf("attempt %d %s = %q, want access/cust_1/3", i, IdempotencyKeyHeader, got)
		}
		if err := VerifySignature(rc.bodies[i], h.Get(SignatureHeader), "whsec_1", 5*time.Minute); err != nil {
			t.Errorf("attempt %d VerifySignature = %v, want nil", i, err)
		}
		if err := VerifySignature(rc.bodies[i], h.Get(SignatureHeader), "whsec_other", 5*time.Minute); !errors.Is(err, ErrSignatureMismatch) {
			t.Errorf("attempt %d VerifySignature(wrong secret) = %v, want ErrSignatureMismatch", i, err)
		}
	}
	var got map[string]any
	if err := json.Unmarshal(rc.bodies[0], &got); err != nil || got["type"] != "access.suspended" {
		t.Errorf("webhook body = %s, want the payload", rc.bodies[0])
	}
}

func TestVerifySignature(t *testing.T) {
	body := []byte(`{"type":"alert.threshold"}`)
	now := time.Unix(1_800_000_000, 0)
	good := Sign(body, "sec", now)
	old := Sign(body, "old", now)
	tests := []struct {
		name      string
		payload   []byte
		header    string
		tolerance time.Duration
		at        time.Time
		want      error
	}{
		{"valid", body, good, 5 * time.Minute, now.Add(time.Minute), nil},
		{"rotated secret", body, old + ",v1=" + good[len("t=1800000000,v1="):], 5 * time.Minute, now, nil},
		{"only old secret", body, old, 5 * time.Minute, now, ErrSignatureMismatch},
		{"tampered body", []byte(`{"type":"alert.other"}`), good, 5 * time.Minute, now, ErrSignatureMismatch},
		{"too old", body, good, 5 * time.Minute, now.Add(6 * time.Minute), ErrSignatureExpired},
		{"from the future", body, good, 5 * time.Minute, now.Add(-6 * time.Minute), ErrSignatureExpired},
		{"no tolerance", body, good, 0, now.Add(24 * time.Hour), nil},
		{"empty header", body, "", time.Minute, now, ErrInvalidSignatureHeader},
		{"no v1", body, "t=1800000000", time.Minute, now, ErrInvalidSignatureHeader},
		{"garbage", body, "sig", time.Minute, now, ErrInvalidSignatureHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyAt(tt.payload, tt.header, "sec", tt.tolerance, tt.at)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("VerifySignature(%s) = %v, want %v", tt.name, err, tt.want)
			}
		})
	}
}
