package sendgrid_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/billcycle/billcycle/integrations/sendgrid"
	"github.com/billcycle/billcycle/integrations/sendgrid/sendgridfake"
)

func plain() sendgrid.Message {
	return sendgrid.Message{
		DedupeKey: "invoice-issued/inv_1",
		To:        "ada@example.com", ToName: "Ada",
		From: "billing@billcycle.dev", FromName: "Billcycle",
		Subject:    "Your invoice",
		Text:       "Total: $12.34",
		HTML:       "<p>Total: $12.34</p>",
		Categories: []string{"invoice"},
	}
}

func TestSendPlain(t *testing.T) {
	fake := sendgridfake.New(t)
	fake.APIKey = "SG.key"
	c := sendgrid.New("SG.key", fake.URL)

	id, err := c.Send(context.Background(), plain())
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := fake.Messages()
	if len(msgs) != 1 {
		t.Fatalf("fake accepted %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if id == "" || id != m.ID {
		t.Errorf("Send = %q, want the fake's message id %q", id, m.ID)
	}
	to := m.Personalizations[0].To[0]
	if to.Email != "ada@example.com" || to.Name != "Ada" || m.From.Email != "billing@billcycle.dev" || m.From.Name != "Billcycle" {
		t.Errorf("addresses = to %+v from %+v, want Ada <ada@example.com> from Billcycle <billing@billcycle.dev>", to, *m.From)
	}
	if m.Subject != "Your invoice" || m.TemplateID != "" {
		t.Errorf("subject, template = %q, %q, want Your invoice and none", m.Subject, m.TemplateID)
	}
	if len(m.Content) != 2 || m.Content[0].Type != "text/plain" || m.Content[0].Value != "Total: $12.34" ||
		m.Content[1].Type != "text/html" || m.Content[1].Value != "<p>Total: $12.34</p>" {
		t.Errorf("content = %+v, want text/plain then text/html", m.Content)
	}
	if m.CustomArgs[sendgrid.DedupeArg] != "invoice-issued/inv_1" {
		t.Errorf("custom_args = %v, want %s=invoice-issued/inv_1", m.CustomArgs, sendgrid.DedupeArg)
	}
	if len(m.Categories) != 1 || m.Categories[0] != "invoice" {
		t.Errorf("categories = %v, want [invoice]", m.Categories)
	}
}

func TestSendTemplate(t *testing.T) {
	fake := sendgridfake.New(t)
	c := sendgrid.New("SG.key", fake.URL)
	msg := sendgrid.Message{
		DedupeKey: "dunning/inv_9/1",
		To:        "bob@example.com", From: "billing@billcycle.dev",
		TemplateID:   "d-123",
		TemplateData: map[string]any{"amount": "$99.00", "attempt": 1},
	}
	if _, err := c.Send(context.Background(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := fake.Messages()[0]
	if m.TemplateID != "d-123" || len(m.Content) != 0 || m.Subject != "" {
		t.Errorf("template, content, subject = %q, %v, %q; want d-123 and none", m.TemplateID, m.Content, m.Subject)
	}
	data := m.Personalizations[0].DynamicTemplateData
	if data["amount"] != "$99.00" || data["attempt"] != float64(1) {
		t.Errorf("dynamic_template_data = %v, want amount $99.00 attempt 1", data)
	}
}

func TestSendFailures(t *testing.T) {
	tests := []struct {
		status    int
		retryable bool
	}{
		{400, false}, {401, false}, {403, false}, {413, false},
		{429, true}, {500, true}, {502, true}, {503, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			fake := sendgridfake.New(t)
			c := sendgrid.New("SG.key", fake.URL)
			fake.FailNext(1, tt.status)
			_, err := c.Send(context.Background(), plain())
			var se *sendgrid.Error
			if !errors.As(err, &se) || se.StatusCode != tt.status {
				t.Fatalf("Send = %v, want *sendgrid.Error with status %d", err, tt.status)
			}
			if got := sendgrid.IsRetryable(err); got != tt.retryable {
				t.Errorf("IsRetryable(%v) = %v, want %v", err, got, tt.retryable)
			}
			if len(se.Messages) == 0 || !strings.Contains(err.Error(), "injected failure") {
				t.Errorf("error %q lacks SendGrid's message", err)
			}
			// the failure was for the next call only
			if _, err := c.Send(context.Background(), plain()); err != nil {
				t.Errorf("Send after failure: %v", err)
			}
			if n := len(fake.Messages()); n != 1 {
				t.Errorf("fake accepted %d messages, want 1", n)
			}
		})
	}
}

func TestSendRejectedShapeIsPermanent(t *testing.T) {
	// A server that answers like SendGrid for a request our validation cannot catch.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"errors":[{"message":"The template_id must be a valid GUID.","field":"template_id","help":null}]}`)
	}))
	defer srv.Close()
	m := plain()
	m.TemplateID = "nope"
	_, err := sendgrid.New("SG.key", srv.URL).Send(context.Background(), m)
	if err == nil || sendgrid.IsRetryable(err) || !strings.Contains(err.Error(), "template_id: The template_id must be a valid GUID.") {
		t.Errorf("Send(bad template) = %v, want permanent error with SendGrid's message", err)
	}
}

func TestSendInvalidMessage(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*sendgrid.Message)
	}{
		{"no recipient", func(m *sendgrid.Message) { m.To = "" }},
		{"no sender", func(m *sendgrid.Message) { m.From = "" }},
		{"no subject", func(m *sendgrid.Message) { m.Subject = "" }},
		{"no body", func(m *sendgrid.Message) { m.Text, m.HTML = "", "" }},
	}
	fake := sendgridfake.New(t)
	c := sendgrid.New("SG.key", fake.URL)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := plain()
			tt.modify(&m)
			if _, err := c.Send(context.Background(), m); err == nil || sendgrid.IsRetryable(err) {
				t.Errorf("Send(%s) = %v, want permanent error", tt.name, err)
			}
		})
	}
	if n := fake.Calls(); n != 0 {
		t.Errorf("fake received %d calls for invalid messages, want 0", n)
	}
}

func TestSendWrongKey(t *testing.T) {
	fake := sendgridfake.New(t)
	fake.APIKey = "SG.right"
	_, err := sendgrid.New("SG.wrong", fake.URL).Send(context.Background(), plain())
	var se *sendgrid.Error
	if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized || sendgrid.IsRetryable(err) {
		t.Errorf("Send(wrong key) = %v, want permanent 401", err)
	}
}

func TestSendHonoursContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := sendgrid.New("SG.key", srv.URL).Send(ctx, plain())
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !sendgrid.IsRetryable(err) {
		t.Errorf("Send(expiring ctx) = %v, want retryable deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send(expiring ctx) took %v, want about 50ms", d)
	}
}
