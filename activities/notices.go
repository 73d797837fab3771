package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/billcycle/billcycle/billing"
)

// Notice is an email to a customer.
type Notice struct {
	// DedupeKey identifies the logical notice (for example
	// "alert/a_1/acme/2026-11-01"): a second call with the same key sends
	// nothing.
	DedupeKey  string `json:"dedupe_key"`
	CustomerID string `json:"customer_id"`
	// Kind classifies the notice ("alert", "invoice", "dunning", ...).
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
	Text    string `json:"text"`
	// TemplateID, when set, sends the SendGrid dynamic template filled with
	// Data instead of Subject and Text.
	TemplateID string         `json:"template_id,omitempty"`
	Data       map[string]any `json:"data,omitempty"`
}

// SentNotice is the outcome of SendNotice.
type SentNotice struct {
	DedupeKey string `json:"dedupe_key"`
	// Duplicate is true when the key had been delivered before and nothing
	// was sent now.
	Duplicate bool `json:"duplicate"`
}

// AccessChange grants or revokes a customer's API access.
type AccessChange struct {
	DedupeKey  string `json:"dedupe_key"`
	CustomerID string `json:"customer_id"`
	Granted    bool   `json:"granted"`
	Reason     string `json:"reason"`
}

// SalesNotice tells the sales team about a customer (an upsell, a limit hit).
type SalesNotice struct {
	DedupeKey  string `json:"dedupe_key"`
	CustomerID string `json:"customer_id"`
	Text       string `json:"text"`
}

// Email is one email as the Mailer sends it.
type Email struct {
	DedupeKey    string
	To, ToName   string
	Subject      string
	Text         string
	TemplateID   string
	TemplateData map[string]any
	Categories   []string
}

// Mailer sends email and returns the provider's message id. Errors that
// sending again would repeat (a refused address, a bad template) wrap
// ErrPermanent; every other error is retried.
type Mailer interface {
	Send(ctx context.Context, m Email) (string, error)
	// Channel is "email" for a real provider or "outbox" for the dev outbox,
	// which delivers nothing: the recorded notice is the outbox entry.
	Channel() string
}

// OutboxMailer is the Mailer used while no SendGrid key is set: it sends
// nothing, so the notices table is the durable dev outbox.
type OutboxMailer struct{}

// Send accepts m without sending it.
func (OutboxMailer) Send(context.Context, Email) (string, error) { return "", nil }

// Channel returns "outbox".
func (OutboxMailer) Channel() string { return NoticeChannelOutbox }

// Notice channels and statuses as recorded in the notice log.
const (
	NoticeChannelEmail   = "email"
	NoticeChannelSlack   = "slack"
	NoticeChannelWebhook = "webhook"
	NoticeChannelOutbox  = "outbox"

	NoticePending = "pending"
	NoticeSent    = "sent"
	NoticeFailed  = "failed"
	NoticeOutbox  = "outbox"
)

// NoticeRecord is a notice as the notice log stores it.
type NoticeRecord struct {
	DedupeKey  string
	CustomerID string
	Kind       string
	Channel    string
	Recipient  string
	Subject    string
	Body       string
	TemplateID string
	Data       map[string]any
	// Status is pending, sent, failed or outbox.
	Status string
}

// Delivered reports whether the notice reached its provider or the outbox.
func (r NoticeRecord) Delivered() bool { return r.Status == NoticeSent || r.Status == NoticeOutbox }

// NoticeLog is the durable record of notices (the store's notices table).
type NoticeLog interface {
	// ClaimNotice records r as pending unless its key exists, and returns the
	// stored record.
	ClaimNotice(ctx context.Context, r NoticeRecord) (NoticeRecord, error)
	// ClaimAccessChange flips r.CustomerID's access and claims r in one
	// transaction; changed is false (and nothing is claimed) when access was
	// already as asked, true when this key changed it, now or before.
	ClaimAccessChange(ctx context.Context, r NoticeRecord, granted bool, reason string) (rec NoticeRecord, changed bool, err error)
	// FinishNotice records an attempt's outcome (status sent, outbox, failed,
	// or pending for a retryable failure).
	FinishNotice(ctx context.Context, dedupeKey, status, providerMessageID, lastError string) error
}

// NoticeContact is the part of a customer the notices need.
type NoticeContact struct {
	Email    string
	Name     string
	Metadata map[string]string
}

// NoticeContacts looks customers up; an unknown customer wraps ErrUnknownCustomer.
type NoticeContacts interface {
	Contact(ctx context.Context, customerID string) (NoticeContact, error)
}

// ErrUnknownCustomer marks a lookup of a customer that does not exist.
var ErrUnknownCustomer = errors.New("unknown customer")

// AlertSource lists the alerts that apply to a customer.
type AlertSource interface {
	AlertsFor(ctx context.Context, customerID string, metadata map[string]string) ([]billing.Alert, error)
}

// SlackPoster posts to a Slack incoming webhook; permanent errors wrap ErrPermanent.
type SlackPoster interface {
	PostSlack(ctx context.Context, webhookURL, text string) error
}

// SignedWebhookSender delivers a signed JSON webhook with an idempotency key;
// permanent errors wrap ErrPermanent.
type SignedWebhookSender interface {
	SendWebhook(ctx context.Context, url, secret, idempotencyKey string, payload any) error
}

// NoticeConfig holds the notice destinations from the configuration.
type NoticeConfig struct {
	// SalesSlackWebhook is the Slack incoming webhook for sales notices
	// (BILLCYCLE_SALES_SLACK_WEBHOOK); it wins over SalesEmail.
	SalesSlackWebhook string
	// SalesEmail receives sales notices when no Slack webhook is set
	// (BILLCYCLE_SALES_EMAIL).
	SalesEmail string
	// AccessWebhookURL and AccessWebhookSecret are the endpoint told about
	// access changes (BILLCYCLE_ACCESS_WEBHOOK_URL, _SECRET).
	AccessWebhookURL    string
	AccessWebhookSecret string
	// Templates maps a notice kind, or the step template a dunning notice
	// names in Data["template"], to a SendGrid dynamic template id
	// (BILLCYCLE_SENDGRID_TEMPLATES). A notice without a template of its own
	// uses the most specific match; one with none goes as plain content.
	Templates map[string]string
}

// withTemplate fills in n's dynamic template from the configured ones. The
// template gets the plain subject and text as data too, so a template can
// show them and the outbox still reads well.
func (c NoticeConfig) withTemplate(n Notice) Notice {
	if n.TemplateID != "" {
		return n
	}
	name, _ := n.Data["template"].(string)
	id := c.Templates[name]
	if id == "" {
		id = c.Templates[n.Kind]
	}
	if id == "" {
		return n
	}
	data := make(map[string]any, len(n.Data)+2)
	for k, v := range n.Data {
		data[k] = v
	}
	data["subject"], data["text"] = n.Subject, n.Text
	n.TemplateID, n.Data = id, data
	return n
}

// NoticeActivities send customer emails, sales notices and access webhooks,
// each at most once per dedupe key, and load alert rules. Workflows refer to
// its methods through a nil *NoticeActivities.
type NoticeActivities struct {
	Log      NoticeLog
	Contacts NoticeContacts
	Alerts   AlertSource
	Mailer   Mailer
	Slack    SlackPoster
	Webhooks SignedWebhookSender
	Config   NoticeConfig
}

// Non-retryable error types the notice activities return.
const (
	ErrTypeNoticeRejected = "NoticeRejected"
	ErrTypeNoticeCustomer = "UnknownCustomer"
	ErrTypeNoticeInvalid  = "BadNotice"
)

// SendNotice emails the customer (address from the customer record) through
// the Mailer, or records it in the dev outbox. The notice is recorded under
// its dedupe key before it is sent, so a retry after a recorded send sends
// nothing and answers Duplicate. A crash after the provider accepted the mail
// but before the outcome was recorded sends it once more on retry, with the
// same dedupe key in SendGrid's custom_args.
func (a *NoticeActivities) SendNotice(ctx context.Context, n Notice) (SentNotice, error) {
	out := SentNotice{DedupeKey: n.DedupeKey}
	if n.DedupeKey == "" || n.CustomerID == "" || n.Kind == "" {
		return out, temporal.NewNonRetryableApplicationError("notice needs dedupe_key, customer_id and kind", ErrTypeNoticeInvalid, nil)
	}
	n = a.Config.withTemplate(n)
	if n.TemplateID == "" && (n.Subject == "" || n.Text == "") {
		return out, temporal.NewNonRetryableApplicationError("notice needs a template_id or both subject and text", ErrTypeNoticeInvalid, nil)
	}
	c, err := a.Contacts.Contact(ctx, n.CustomerID)
	if errors.Is(err, ErrUnknownCustomer) {
		return out, temporal.NewNonRetryableApplicationError(fmt.Sprintf("send notice %s: customer %s not found", n.DedupeKey, n.CustomerID), ErrTypeNoticeCustomer, err)
	}
	if err != nil {
		return out, fmt.Errorf("send notice %s: %w", n.DedupeKey, err)
	}
	rec, err := a.Log.ClaimNotice(ctx, NoticeRecord{
		DedupeKey: n.DedupeKey, CustomerID: n.CustomerID, Kind: n.Kind, Channel: a.Mailer.Channel(),
		Recipient: c.Email, Subject: n.Subject, Body: n.Text, TemplateID: n.TemplateID, Data: n.Data,
	})
	if err != nil {
		return out, fmt.Errorf("send notice %s: %w", n.DedupeKey, err)
	}
	if rec.Delivered() {
		out.Duplicate = true
		return out, nil
	}
	// Send what was claimed first, so every attempt of one key sends the same mail.
	mail := Email{
		DedupeKey: rec.DedupeKey, To: rec.Recipient, ToName: c.Name, Subject: rec.Subject, Text: rec.Body,
		TemplateID: rec.TemplateID, TemplateData: rec.Data, Categories: []string{rec.Kind},
	}
	if mail.TemplateID != "" {
		mail.Subject, mail.Text = "", "" // the template renders them from its data
	}
	err = a.mail(ctx, rec, mail)
	return out, err
}

// mail sends m for the claimed record rec and records the outcome.
func (a *NoticeActivities) mail(ctx context.Context, rec NoticeRecord, m Email) error {
	id, err := a.Mailer.Send(ctx, m)
	status := NoticeSent
	if a.Mailer.Channel() == NoticeChannelOutbox {
		status = NoticeOutbox
	}
	return a.finish(ctx, rec.DedupeKey, status, id, err)
}

// finish records the outcome of one attempt and returns the error the
// activity should return: nil, a plain error to retry, or a non-retryable one.
func (a *NoticeActivities) finish(ctx context.Context, key, okStatus, providerID string, sendErr error) error {
	if sendErr == nil {
		if err := a.Log.FinishNotice(ctx, key, okStatus, providerID, ""); err != nil {
			return fmt.Errorf("record delivery of notice %s: %w", key, err)
		}
		return nil
	}
	status := NoticePending
	if errors.Is(sendErr, ErrPermanent) {
		status = NoticeFailed
	}
	if err := a.Log.FinishNotice(ctx, key, status, "", sendErr.Error()); err != nil {
		return errors.Join(fmt.Errorf("deliver notice %s: %w", key, sendErr), fmt.Errorf("record failure: %w", err))
	}
	if status == NoticeFailed {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("deliver notice %s: %v", key, sendErr), ErrTypeNoticeRejected, sendErr)
	}
	return fmt.Errorf("deliver notice %s: %w", key, sendErr)
}

// AccessWebhookPayload is the body of the signed webhook sent when a
// customer's access changes.
type AccessWebhookPayload struct {
	// Type is "customer.access.granted" or "customer.access.revoked".
	Type       string `json:"type"`
	CustomerID string `json:"customer_id"`
	// Access is "granted" or "revoked".
	Access    string `json:"access"`
	Reason    string `json:"reason"`
	ChangedAt string `json:"changed_at"`
	// IdempotencyKey is the change's dedupe key, also sent as the
	// Billcycle-Idempotency-Key header.
	IdempotencyKey string `json:"idempotency_key"`
}

// SetAccess grants or revokes the customer's API access and, once per
// change, sends a signed webhook to the configured access endpoint (or
// records it in the outbox when none is set). It reports whether this change
// (this dedupe key) flipped the access state; a retry reports the same.
func (a *NoticeActivities) SetAccess(ctx context.Context, ch AccessChange) (bool, error) {
	if ch.DedupeKey == "" || ch.CustomerID == "" {
		return false, temporal.NewNonRetryableApplicationError("access change needs dedupe_key and customer_id", ErrTypeNoticeInvalid, nil)
	}
	access := "revoked"
	if ch.Granted {
		access = "granted"
	}
	channel := NoticeChannelWebhook
	if a.Config.AccessWebhookURL == "" || a.Config.AccessWebhookSecret == "" || a.Webhooks == nil {
		channel = NoticeChannelOutbox
	}
	rec, changed, err := a.Log.ClaimAccessChange(ctx, NoticeRecord{
		DedupeKey: ch.DedupeKey, CustomerID: ch.CustomerID, Kind: "access", Channel: channel,
		Recipient: a.Config.AccessWebhookURL, Subject: "customer.access." + access, Body: ch.Reason,
		Data: map[string]any{"customer_id": ch.CustomerID, "access": access, "reason": ch.Reason},
	}, ch.Granted, ch.Reason)
	if errors.Is(err, ErrUnknownCustomer) {
		return false, temporal.NewNonRetryableApplicationError(fmt.Sprintf("set access: customer %s not found", ch.CustomerID), ErrTypeNoticeCustomer, err)
	}
	if err != nil {
		return false, fmt.Errorf("set access of %s: %w", ch.CustomerID, err)
	}
	if !changed || rec.Delivered() {
		return changed, nil
	}
	if rec.Channel == NoticeChannelOutbox {
		return true, a.finish(ctx, rec.DedupeKey, NoticeOutbox, "", nil)
	}
	payload := AccessWebhookPayload{
		Type: rec.Subject, CustomerID: rec.CustomerID, Reason: rec.Body, IdempotencyKey: rec.DedupeKey,
		Access: strings.TrimPrefix(rec.Subject, "customer.access."),
	}
	payload.ChangedAt, _ = rec.Data["changed_at"].(string)
	err = a.Webhooks.SendWebhook(ctx, rec.Recipient, a.Config.AccessWebhookSecret, rec.DedupeKey, payload)
	return true, a.finish(ctx, rec.DedupeKey, NoticeSent, "", err)
}

// NotifySales tells sales about a customer: on Slack when a sales webhook is
// configured, else by email to the sales address, else in the dev outbox.
// Each dedupe key is delivered once.
func (a *NoticeActivities) NotifySales(ctx context.Context, sn SalesNotice) error {
	if sn.DedupeKey == "" || sn.Text == "" {
		return temporal.NewNonRetryableApplicationError("sales notice needs dedupe_key and text", ErrTypeNoticeInvalid, nil)
	}
	rec := NoticeRecord{DedupeKey: sn.DedupeKey, CustomerID: sn.CustomerID, Kind: "sales", Body: sn.Text,
		Subject: "billcycle: customer " + sn.CustomerID}
	switch {
	case a.Config.SalesSlackWebhook != "" && a.Slack != nil:
		rec.Channel, rec.Recipient = NoticeChannelSlack, a.Config.SalesSlackWebhook
	case a.Config.SalesEmail != "":
		rec.Channel, rec.Recipient = a.Mailer.Channel(), a.Config.SalesEmail
	default:
		rec.Channel = NoticeChannelOutbox
	}
	rec, err := a.Log.ClaimNotice(ctx, rec)
	if err != nil {
		return fmt.Errorf("notify sales %s: %w", sn.DedupeKey, err)
	}
	if rec.Delivered() {
		return nil
	}
	switch {
	case rec.Channel == NoticeChannelSlack:
		err := a.Slack.PostSlack(ctx, rec.Recipient, rec.Body)
		return a.finish(ctx, rec.DedupeKey, NoticeSent, "", err)
	case rec.Recipient != "":
		return a.mail(ctx, rec, Email{DedupeKey: rec.DedupeKey, To: rec.Recipient, Subject: rec.Subject,
			Text: rec.Body, Categories: []string{"sales"}})
	default:
		return a.finish(ctx, rec.DedupeKey, NoticeOutbox, "", nil)
	}
}

// LoadAlerts returns the live alerts that apply to the customer: its own and
// the all-customers alerts whose metadata filter it matches.
func (a *NoticeActivities) LoadAlerts(ctx context.Context, customerID string) ([]billing.Alert, error) {
	c, err := a.Contacts.Contact(ctx, customerID)
	if errors.Is(err, ErrUnknownCustomer) {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("load alerts: customer %s not found", customerID), ErrTypeNoticeCustomer, err)
	}
	if err != nil {
		return nil, fmt.Errorf("load alerts of %s: %w", customerID, err)
	}
	alerts, err := a.Alerts.AlertsFor(ctx, customerID, c.Metadata)
	if err != nil {
		return nil, fmt.Errorf("load alerts of %s: %w", customerID, err)
	}
	return alerts, nil
}
