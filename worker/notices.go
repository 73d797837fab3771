package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	sdkworker "go.temporal.io/sdk/worker"

	"github.com/billcycle/billcycle/activities"
	"github.com/billcycle/billcycle/config"
	"github.com/billcycle/billcycle/integrations/notify"
	"github.com/billcycle/billcycle/integrations/sendgrid"
	"github.com/billcycle/billcycle/store"
)

// NoticeConfig is what the notice activities need from the configuration.
type NoticeConfig struct {
	// SendGridAPIKey empty means emails go to the dev outbox (the notices
	// table) instead of SendGrid.
	SendGridAPIKey  string
	SendGridBaseURL string
	EmailFrom       string

	SalesSlackWebhook   string
	SalesEmail          string
	AccessWebhookURL    string
	AccessWebhookSecret string
	// Templates maps notice kinds to SendGrid dynamic template ids.
	Templates map[string]string
}

// NoticeConfigFrom picks the notice settings out of cfg.
func NoticeConfigFrom(cfg config.Config) NoticeConfig {
	return NoticeConfig{
		SendGridAPIKey:      cfg.SendGridAPIKey,
		SendGridBaseURL:     cfg.SendGridBaseURL,
		EmailFrom:           cfg.EmailFrom,
		SalesSlackWebhook:   cfg.SalesSlackWebhook,
		SalesEmail:          cfg.SalesEmail,
		AccessWebhookURL:    cfg.AccessWebhookURL,
		AccessWebhookSecret: cfg.AccessWebhookSecret,
		Templates:           cfg.SendGridTemplates,
	}
}

// NoticeActivities builds the notice activities over d: SendGrid when a key
// is set, the dev outbox otherwise.
func NoticeActivities(d Deps) *activities.NoticeActivities {
	c := d.Notices
	var m activities.Mailer = activities.OutboxMailer{}
	if c.SendGridAPIKey != "" {
		m = sendgridMailer{c: sendgrid.New(c.SendGridAPIKey, c.SendGridBaseURL), from: c.EmailFrom}
	}
	hc := &http.Client{Timeout: 15 * time.Second}
	return &activities.NoticeActivities{
		Log:      noticeLog{d.Store},
		Contacts: contacts{d.Store},
		Alerts:   d.Store,
		Mailer:   m,
		Slack:    slackPoster{notify.NewSlack(hc)},
		Webhooks: webhookSender{notify.NewWebhook(hc)},
		Config: activities.NoticeConfig{
			SalesSlackWebhook:   c.SalesSlackWebhook,
			SalesEmail:          c.SalesEmail,
			AccessWebhookURL:    c.AccessWebhookURL,
			AccessWebhookSecret: c.AccessWebhookSecret,
			Templates:           c.Templates,
		},
	}
}

// RegisterNotices registers the notice activities built over d on w.
func RegisterNotices(w sdkworker.Registry, d Deps) {
	w.RegisterActivity(NoticeActivities(d))
}

// permanentUnless marks err permanent unless retryable says it is worth
// retrying.
func permanentUnless(err error, retryable func(error) bool) error {
	if err == nil || retryable(err) {
		return err
	}
	return errors.Join(activities.ErrPermanent, err)
}

// sendgridMailer adapts the SendGrid client to activities.Mailer.
type sendgridMailer struct {
	c    *sendgrid.Client
	from string
}

func (m sendgridMailer) Channel() string { return activities.NoticeChannelEmail }

func (m sendgridMailer) Send(ctx context.Context, e activities.Email) (string, error) {
	id, err := m.c.Send(ctx, sendgrid.Message{
		DedupeKey: e.DedupeKey, To: e.To, ToName: e.ToName, From: m.from, FromName: "billcycle",
		Subject: e.Subject, Text: e.Text, TemplateID: e.TemplateID, TemplateData: e.TemplateData, Categories: e.Categories,
	})
	return id, permanentUnless(err, sendgrid.IsRetryable)
}

type slackPoster struct{ s *notify.Slack }

func (p slackPoster) PostSlack(ctx context.Context, url, text string) error {
	return permanentUnless(p.s.PostSlack(ctx, url, text), notify.IsRetryable)
}

type webhookSender struct{ w *notify.Webhook }

func (s webhookSender) SendWebhook(ctx context.Context, url, secret, key string, payload any) error {
	err := s.w.Send(ctx, notify.Delivery{URL: url, Secret: secret, IdempotencyKey: key, Payload: payload})
	return permanentUnless(err, notify.IsRetryable)
}

// contacts adapts the store's customers to activities.NoticeContacts.
type contacts struct{ s *store.Store }

func (c contacts) Contact(ctx context.Context, id string) (activities.NoticeContact, error) {
	cu, err := c.s.Customer(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return activities.NoticeContact{}, fmt.Errorf("customer %s: %w", id, activities.ErrUnknownCustomer)
	}
	if err != nil {
		return activities.NoticeContact{}, err
	}
	return activities.NoticeContact{Email: cu.Email, Name: cu.Name, Metadata: cu.Metadata}, nil
}

// noticeLog adapts the store's notices table to activities.NoticeLog.
type noticeLog struct{ s *store.Store }

func toStoreNotice(r activities.NoticeRecord) store.Notice {
	return store.Notice{DedupeKey: r.DedupeKey, CustomerID: r.CustomerID, Kind: r.Kind, Channel: r.Channel,
		Recipient: r.Recipient, Subject: r.Subject, Body: r.Body, TemplateID: r.TemplateID, Data: r.Data}
}

func fromStoreNotice(n store.Notice) activities.NoticeRecord {
	return activities.NoticeRecord{DedupeKey: n.DedupeKey, CustomerID: n.CustomerID, Kind: n.Kind, Channel: n.Channel,
		Recipient: n.Recipient, Subject: n.Subject, Body: n.Body, TemplateID: n.TemplateID, Data: n.Data, Status: n.Status}
}

func (l noticeLog) ClaimNotice(ctx context.Context, r activities.NoticeRecord) (activities.NoticeRecord, error) {
	n, _, err := l.s.ClaimNotice(ctx, toStoreNotice(r))
	return fromStoreNotice(n), err
}

func (l noticeLog) ClaimAccessChange(ctx context.Context, r activities.NoticeRecord, granted bool, reason string) (activities.NoticeRecord, bool, error) {
	n, changed, err := l.s.ClaimAccessChange(ctx, toStoreNotice(r), granted, reason)
	if errors.Is(err, store.ErrNotFound) {
		err = errors.Join(activities.ErrUnknownCustomer, err)
	}
	return fromStoreNotice(n), changed, err
}

func (l noticeLog) FinishNotice(ctx context.Context, key, status, providerID, lastError string) error {
	return l.s.FinishNotice(ctx, key, status, providerID, lastError)
}
