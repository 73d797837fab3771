// Package config reads billcycle's settings from the environment (and from
// flags layered on top by the commands), applies defaults that serve a local
// run, and rejects a missing or malformed setting at start with a message that
// names it.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config holds every setting of the service. The zero value is not useful;
// build one with Load.
type Config struct {
	DatabaseURL       string
	TemporalAddress   string
	TemporalNamespace string
	TaskQueue         string

	HTTPAddr string

	StripeAPIKey        string
	StripeAPIBase       string // empty means api.stripe.com
	StripeWebhookSecret string

	SendGridAPIKey  string
	SendGridBaseURL string // empty means api.sendgrid.com
	EmailFrom       string
	// SendGridTemplates maps a notice kind (usage_alert, threshold_invoice,
	// dunning) or a dunning step's template name to a SendGrid dynamic
	// template id; notices without one are sent as plain content.
	SendGridTemplates map[string]string

	// SalesSlackWebhook, SalesEmail: where sales notices go (Slack wins).
	SalesSlackWebhook string
	SalesEmail        string
	// AccessWebhookURL, AccessWebhookSecret: the endpoint told (signed) about
	// access changes; empty means they are recorded in the outbox only.
	AccessWebhookURL    string
	AccessWebhookSecret string

	// MaxEventLateness is how old an event may be and still be accepted.
	MaxEventLateness time.Duration
	// MaxEventFuture is how far ahead of the server clock an event may be.
	MaxEventFuture time.Duration
	// MaxBodyBytes bounds a request body; larger ones get 413.
	MaxBodyBytes int64

	LogLevel string
}

// Var describes one environment variable: its name, default and meaning. The
// commands print this table in --help, and the README carries the same table.
type Var struct {
	Name    string
	Default string
	Help    string
}

// Vars lists every environment variable billcycle reads, in the order --help
// prints them.
var Vars = []Var{
	{"DATABASE_URL", "postgres://postgres@127.0.0.1:5432/billcycle?sslmode=disable", "PostgreSQL connection URL"},
	{"TEMPORAL_ADDRESS", "127.0.0.1:7233", "Temporal frontend host:port"},
	{"TEMPORAL_NAMESPACE", "default", "Temporal namespace"},
	{"BILLCYCLE_TASK_QUEUE", "billing", "Temporal task queue of the worker"},
	{"BILLCYCLE_HTTP_ADDR", "127.0.0.1:8080", "address the HTTP API listens on"},
	{"STRIPE_API_KEY", "sk_test_123", "Stripe secret key (the default suits stripe-mock)"},
	{"STRIPE_API_BASE", "", "Stripe API base URL, e.g. http://127.0.0.1:12111 for stripe-mock; empty means api.stripe.com"},
	{"STRIPE_WEBHOOK_SECRET", "", "signing secret of the Stripe webhook endpoint (whsec_...); webhooks are refused while it is empty"},
	{"SENDGRID_API_KEY", "", "SendGrid API key; empty means emails go to the durable dev outbox instead"},
	{"SENDGRID_BASE_URL", "", "SendGrid API host; empty means https://api.sendgrid.com"},
	{"BILLCYCLE_EMAIL_FROM", "billing@billcycle.local", "sender address of customer notices"},
	{"BILLCYCLE_SENDGRID_TEMPLATES", "", "dynamic template ids by notice kind or dunning step template, e.g. usage_alert=d-1a2b,threshold_invoice=d-3c4d,dunning_final_warning=d-5e6f; unlisted notices go as plain content"},
	{"BILLCYCLE_SALES_SLACK_WEBHOOK", "", "Slack incoming-webhook URL for sales notices; empty means email to BILLCYCLE_SALES_EMAIL"},
	{"BILLCYCLE_SALES_EMAIL", "", "address of sales notices when no Slack webhook is set; both empty means the dev outbox"},
	{"BILLCYCLE_ACCESS_WEBHOOK_URL", "", "endpoint sent a signed webhook when a customer's access is granted or revoked; empty means the outbox only"},
	{"BILLCYCLE_ACCESS_WEBHOOK_SECRET", "", "HMAC secret signing the access webhooks (Billcycle-Signature header)"},
	{"BILLCYCLE_MAX_EVENT_LATENESS", "840h", "oldest event timestamp accepted (Go duration; 840h = 35 days)"},
	{"BILLCYCLE_MAX_EVENT_FUTURE", "5m", "how far in the future an event timestamp may be"},
	{"BILLCYCLE_MAX_BODY_BYTES", "16777216", "largest request body accepted, in bytes"},
	{"BILLCYCLE_LOG_LEVEL", "info", "debug, info, warn or error"},
}

// Default returns the default value of the named variable.
func Default(name string) string {
	for _, v := range Vars {
		if v.Name == name {
			return v.Default
		}
	}
	return ""
}

// Load builds a Config from lookup (os.LookupEnv in production), falling back
// to defaults. Every malformed value is reported, each naming its variable.
func Load(lookup func(string) (string, bool)) (Config, error) {
	get := func(name string) string {
		if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return Default(name)
	}
	var errs []error
	c := Config{
		DatabaseURL:         get("DATABASE_URL"),
		TemporalAddress:     get("TEMPORAL_ADDRESS"),
		TemporalNamespace:   get("TEMPORAL_NAMESPACE"),
		TaskQueue:           get("BILLCYCLE_TASK_QUEUE"),
		HTTPAddr:            get("BILLCYCLE_HTTP_ADDR"),
		StripeAPIKey:        get("STRIPE_API_KEY"),
		StripeAPIBase:       get("STRIPE_API_BASE"),
		StripeWebhookSecret: get("STRIPE_WEBHOOK_SECRET"),
		SendGridAPIKey:      get("SENDGRID_API_KEY"),
		SendGridBaseURL:     get("SENDGRID_BASE_URL"),
		EmailFrom:           get("BILLCYCLE_EMAIL_FROM"),
		SalesSlackWebhook:   get("BILLCYCLE_SALES_SLACK_WEBHOOK"),
		SalesEmail:          get("BILLCYCLE_SALES_EMAIL"),
		AccessWebhookURL:    get("BILLCYCLE_ACCESS_WEBHOOK_URL"),
		AccessWebhookSecret: get("BILLCYCLE_ACCESS_WEBHOOK_SECRET"),
		LogLevel:            strings.ToLower(get("BILLCYCLE_LOG_LEVEL")),
	}
	if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		errs = append(errs, fmt.Errorf("DATABASE_URL: want a postgres:// URL, got %q", c.DatabaseURL))
	}
	if err := checkHostPort(c.TemporalAddress); err != nil {
		errs = append(errs, fmt.Errorf("TEMPORAL_ADDRESS: %w", err))
	}
	if err := checkHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("BILLCYCLE_HTTP_ADDR: %w", err))
	}
	for _, v := range []struct{ name, val string }{{"STRIPE_API_BASE", c.StripeAPIBase}, {"SENDGRID_BASE_URL", c.SendGridBaseURL},
		{"BILLCYCLE_SALES_SLACK_WEBHOOK", c.SalesSlackWebhook}, {"BILLCYCLE_ACCESS_WEBHOOK_URL", c.AccessWebhookURL}} {
		if v.val == "" {
			continue
		}
		if u, err := url.Parse(v.val); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s: want an http(s) URL, got %q", v.name, v.val))
		}
	}
	if c.StripeWebhookSecret != "" && !strings.HasPrefix(c.StripeWebhookSecret, "whsec_") {
		errs = append(errs, errors.New("STRIPE_WEBHOOK_SECRET: want a Stripe signing secret starting with whsec_"))
	}
	if c.AccessWebhookURL != "" && c.AccessWebhookSecret == "" {
		errs = append(errs, errors.New("BILLCYCLE_ACCESS_WEBHOOK_SECRET: required when BILLCYCLE_ACCESS_WEBHOOK_URL is set, to sign the webhooks"))
	}
	if c.SalesEmail != "" && !strings.Contains(c.SalesEmail, "@") {
		errs = append(errs, fmt.Errorf("BILLCYCLE_SALES_EMAIL: want an email address, got %q", c.SalesEmail))
	}
	if !strings.Contains(c.EmailFrom, "@") {
		errs = append(errs, fmt.Errorf("BILLCYCLE_EMAIL_FROM: want an email address, got %q", c.EmailFrom))
	}
	var err error
	if c.SendGridTemplates, err = parseTemplates(get("BILLCYCLE_SENDGRID_TEMPLATES")); err != nil {
		errs = append(errs, fmt.Errorf("BILLCYCLE_SENDGRID_TEMPLATES: %w", err))
	}
	if c.MaxEventLateness, err = positiveDuration(get("BILLCYCLE_MAX_EVENT_LATENESS")); err != nil {
		errs = append(errs, fmt.Errorf("BILLCYCLE_MAX_EVENT_LATENESS: %w", err))
	}
	if c.MaxEventFuture, err = positiveDuration(get("BILLCYCLE_MAX_EVENT_FUTURE")); err != nil {
		errs = append(errs, fmt.Errorf("BILLCYCLE_MAX_EVENT_FUTURE: %w", err))
	}
	if c.MaxBodyBytes, err = strconv.ParseInt(get("BILLCYCLE_MAX_BODY_BYTES"), 10, 64); err != nil || c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("BILLCYCLE_MAX_BODY_BYTES: want a whole number of bytes of at least 1024, got %q", get("BILLCYCLE_MAX_BODY_BYTES")))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("BILLCYCLE_LOG_LEVEL: want debug, info, warn or error, got %q", c.LogLevel))
	}
	return c, errors.Join(errs...)
}

// FromEnv is Load over the process environment.
func FromEnv() (Config, error) { return Load(os.LookupEnv) }

func checkHostPort(s string) error {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return fmt.Errorf("want host:port, got %q", s)
	}
	if p, err := strconv.Atoi(s[i+1:]); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("want host:port with a port from 1 to 65535, got %q", s)
	}
	return nil
}

func positiveDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive Go duration such as 840h or 5m, got %q", s)
	}
	return d, nil
}

// parseTemplates reads "kind=d-id,kind=d-id" into a map.
func parseTemplates(s string) (map[string]string, error) {
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	for _, pair := range strings.Split(s, ",") {
		kind, id, ok := strings.Cut(strings.TrimSpace(pair), "=")
		kind, id = strings.TrimSpace(kind), strings.TrimSpace(id)
		if !ok || kind == "" || !strings.HasPrefix(id, "d-") {
			return nil, fmt.Errorf("want kind=d-templateid pairs separated by commas, got %q", pair)
		}
		out[kind] = id
	}
	return out, nil
}
