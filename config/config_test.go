package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatalf("Load(empty) error = %v, want nil", err)
	}
	if c.TemporalAddress != "127.0.0.1:7233" || c.TaskQueue != "billing" || c.MaxEventLateness != 35*24*time.Hour || c.MaxEventFuture != 5*time.Minute {
		t.Errorf("Load(empty) = %+v, want local defaults", c)
	}
	if c.SendGridAPIKey != "" {
		t.Errorf("SendGridAPIKey = %q, want empty (dev outbox)", c.SendGridAPIKey)
	}
}

func TestLoadOverrides(t *testing.T) {
	c, err := Load(env(map[string]string{"TEMPORAL_ADDRESS": "temporal:7233", "BILLCYCLE_MAX_EVENT_LATENESS": "48h", "STRIPE_API_BASE": "http://127.0.0.1:12111"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.TemporalAddress != "temporal:7233" || c.MaxEventLateness != 48*time.Hour || c.StripeAPIBase != "http://127.0.0.1:12111" {
		t.Errorf("Load(overrides) = %+v", c)
	}
}

func TestLoadNamesEachBadSetting(t *testing.T) {
	tests := []struct {
		name, value string
	}{
		{"DATABASE_URL", "mysql://x"},
		{"TEMPORAL_ADDRESS", "nohostport"},
		{"TEMPORAL_ADDRESS", "host:99999"},
		{"BILLCYCLE_HTTP_ADDR", "8080"},
		{"STRIPE_API_BASE", "127.0.0.1:12111"},
		{"STRIPE_WEBHOOK_SECRET", "secret"},
		{"BILLCYCLE_MAX_EVENT_LATENESS", "35 days"},
		{"BILLCYCLE_MAX_EVENT_FUTURE", "-5m"},
		{"BILLCYCLE_MAX_BODY_BYTES", "lots"},
		{"BILLCYCLE_LOG_LEVEL", "loud"},
		{"BILLCYCLE_EMAIL_FROM", "nobody"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := Load(env(map[string]string{tt.name: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.name+":") {
				t.Fatalf("Load(%s=%q) error = %v, want one naming %s", tt.name, tt.value, err, tt.name)
			}
		})
	}
}

func TestLoadReportsAllErrorsAtOnce(t *testing.T) {
	_, err := Load(env(map[string]string{"TEMPORAL_ADDRESS": "x", "BILLCYCLE_LOG_LEVEL": "loud"}))
	if err == nil || !strings.Contains(err.Error(), "TEMPORAL_ADDRESS") || !strings.Contains(err.Error(), "BILLCYCLE_LOG_LEVEL") {
		t.Fatalf("Load(two bad) error = %v, want both named", err)
	}
}

func TestSendGridTemplates(t *testing.T) {
	c, err := Load(env(map[string]string{"BILLCYCLE_SENDGRID_TEMPLATES": "usage_alert=d-1a2b, dunning_final_warning=d-3c4d"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.SendGridTemplates["usage_alert"] != "d-1a2b" || c.SendGridTemplates["dunning_final_warning"] != "d-3c4d" || len(c.SendGridTemplates) != 2 {
		t.Errorf("SendGridTemplates = %v", c.SendGridTemplates)
	}
	for _, bad := range []string{"usage_alert", "usage_alert=abc", "=d-1"} {
		if _, err := Load(env(map[string]string{"BILLCYCLE_SENDGRID_TEMPLATES": bad})); err == nil || !strings.Contains(err.Error(), "BILLCYCLE_SENDGRID_TEMPLATES:") {
			t.Errorf("Load(BILLCYCLE_SENDGRID_TEMPLATES=%q) error = %v, want one naming the variable", bad, err)
		}
	}
}
