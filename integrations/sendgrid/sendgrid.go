// Package sendgrid sends billcycle's transactional email through SendGrid's v3 mail/send API
// and classifies failures as retryable or permanent.
//
// SendGrid has no idempotency key: a retry after a lost 202 sends the mail twice. Message's
// DedupeKey travels in custom_args (billcycle_dedupe_key) so duplicates can be traced in
// SendGrid's activity feed and event webhook; callers that must not repeat a mail record the
// returned message id before retrying anything else.
//
// sendgrid-go facts this package relies on: Send answers (*rest.Response, nil) for 400, 429
// and 5xx alike, so the status is checked here; success is 202 with an X-Message-Id header.
// MakeRequestRetry is not used: it looks up the rate-limit header under the wrong case and
// always sleeps 1.1 s, so 429 and 5xx are returned as retryable errors instead.
package sendgrid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sendgrid/rest"
	sg "github.com/sendgrid/sendgrid-go"
	"github.com/sendgrid/sendgrid-go/helpers/mail"
)

// DedupeArg is the custom_args key that carries Message.DedupeKey.
const DedupeArg = "billcycle_dedupe_key"

// sendEndpoint is the v3 mail send path.
const sendEndpoint = "/v3/mail/send"

// Client sends mail through SendGrid. It is safe for concurrent use.
type Client struct {
	apiKey string
	host   string
	http   *rest.Client
}

// New returns a Client that authenticates with apiKey against baseURL (scheme and host, no
// path); empty baseURL means https://api.sendgrid.com.
func New(apiKey, baseURL string) *Client {
	return &Client{
		apiKey: apiKey,
		host:   strings.TrimRight(baseURL, "/"),
		http:   &rest.Client{HTTPClient: &http.Client{Timeout: 30 * time.Second}},
	}
}

// Message is one email to one recipient.
type Message struct {
	// DedupeKey identifies the logical send (for example "invoice-issued/inv_1"); it is sent
	// as custom_args.billcycle_dedupe_key.
	DedupeKey string
	// To and ToName are the recipient; To is required.
	To, ToName string
	// From and FromName are the sender; From is required and must be a verified sender.
	From, FromName string
	// Subject is required unless TemplateID is set (the template then provides it).
	Subject string
	// Text and HTML are the bodies for a plain send; at least one is required without TemplateID.
	Text, HTML string
	// TemplateID selects a SendGrid dynamic template (d-...); TemplateData fills it.
	TemplateID   string
	TemplateData map[string]any
	// Categories tag the mail in SendGrid's statistics.
	Categories []string
}

// Error is a failed send. Every error Send returns is, or wraps, an *Error.
type Error struct {
	// StatusCode is SendGrid's HTTP status; 0 when no answer arrived.
	StatusCode int
	// Messages are SendGrid's error messages, or a description of a local failure.
	Messages []string
	// Retryable reports whether sending again may succeed.
	Retryable bool
	// Err is the underlying error, if any.
	Err error
}

// Error describes the failure.
func (e *Error) Error() string {
	s := "sendgrid: send"
	if e.StatusCode != 0 {
		s += fmt.Sprintf(": status %d", e.StatusCode)
	}
	if len(e.Messages) > 0 {
		s += ": " + strings.Join(e.Messages, "; ")
	}
	if e.Err != nil && len(e.Messages) == 0 {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err is worth retrying: SendGrid's 429 and 5xx answers, network
// failures and context deadlines are; other 4xx answers (bad request, bad key, payload too
// large) and invalid messages are not. Errors this package did not classify count as
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

// Send sends m and returns SendGrid's message id (the X-Message-Id header of the 202).
func (c *Client) Send(ctx context.Context, m Message) (string, error) {
	if err := validate(m); err != nil {
		return "", err
	}
	req := sg.GetRequest(c.apiKey, sendEndpoint, c.host)
	req.Method = rest.Post
	req.Body = mail.GetRequestBody(build(m))

	resp, err := c.http.SendWithContext(ctx, req)
	if err != nil {
		return "", &Error{Retryable: true, Err: err}
	}
	switch {
	case resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK:
		return header(resp.Headers, "X-Message-Id"), nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return "", &Error{StatusCode: resp.StatusCode, Messages: errorMessages(resp.Body), Retryable: true}
	default:
		return "", &Error{StatusCode: resp.StatusCode, Messages: errorMessages(resp.Body), Retryable: false}
	}
}

// validate rejects messages SendGrid would refuse, before spending a request.
func validate(m Message) error {
	var missing []string
	if m.To == "" {
		missing = append(missing, "recipient address")
	}
	if m.From == "" {
		missing = append(missing, "sender address")
	}
	if m.TemplateID == "" {
		if m.Subject == "" {
			missing = append(missing, "subject")
		}
		if m.Text == "" && m.HTML == "" {
			missing = append(missing, "text or html body")
		}
	}
	if len(missing) > 0 {
		msg := "message lacks " + strings.Join(missing, ", ")
		return &Error{Messages: []string{msg}, Err: errors.New(msg)}
	}
	return nil
}

// build turns m into the v3 request body.
func build(m Message) *mail.SGMailV3 {
	v := mail.NewV3Mail()
	v.SetFrom(mail.NewEmail(m.FromName, m.From))
	p := mail.NewPersonalization()
	p.AddTos(mail.NewEmail(m.ToName, m.To))
	if m.TemplateID != "" {
		v.SetTemplateID(m.TemplateID)
		for k, val := range m.TemplateData {
			p.SetDynamicTemplateData(k, val)
		}
	}
	if m.Subject != "" {
		v.Subject = m.Subject
	}
	// SendGrid requires text/plain before text/html.
	if m.Text != "" {
		v.AddContent(mail.NewContent("text/plain", m.Text))
	}
	if m.HTML != "" {
		v.AddContent(mail.NewContent("text/html", m.HTML))
	}
	v.AddPersonalizations(p)
	if m.DedupeKey != "" {
		v.SetCustomArg(DedupeArg, m.DedupeKey)
	}
	if len(m.Categories) > 0 {
		v.AddCategories(m.Categories...)
	}
	return v
}

// errorMessages extracts the messages of SendGrid's {"errors":[{"message":...}]} body.
func errorMessages(body string) []string {
	var b struct {
		Errors []struct {
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &b); err != nil || len(b.Errors) == 0 {
		if body = strings.TrimSpace(body); body != "" {
			if len(body) > 200 {
				body = body[:200]
			}
			return []string{body}
		}
		return nil
	}
	out := make([]string, 0, len(b.Errors))
	for _, e := range b.Errors {
		if e.Field != "" {
			out = append(out, e.Field+": "+e.Message)
		} else {
			out = append(out, e.Message)
		}
	}
	return out
}

// header finds a header in rest's map regardless of case.
func header(h map[string][]string, name string) string {
	if v := http.Header(h).Get(name); v != "" {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}
