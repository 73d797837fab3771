package billing

import (
	"time"

	"github.com/shopspring/decimal"
)

// AlertAction is what happens when a usage alert fires.
type AlertAction string

// The actions an alert may take.
const (
	// ActionEmail emails the customer.
	ActionEmail AlertAction = "email_customer"
	// ActionRevokeAccess cuts off the customer's API access (the access flag
	// and a signed outbound webhook).
	ActionRevokeAccess AlertAction = "revoke_access"
	// ActionNotifySales tells sales about an upsell (Slack or email).
	ActionNotifySales AlertAction = "notify_sales"
)

// AlertDirection says which side of the threshold fires the alert.
type AlertDirection string

// Directions: "above" fires when the meter total reaches the threshold
// (usage alerts); "below" fires when the value falls under it (for example a
// rate-limit-remaining gauge measured with min over a rolling window).
const (
	Above AlertDirection = "above"
	Below AlertDirection = "below"
)

// MaxAlertsPerMeter bounds the alerts on one meter for one customer.
const MaxAlertsPerMeter = 25

// Alert is a usage alert rule on one meter, for one customer or for all
// customers (optionally only those whose metadata matches CustomerFilter).
type Alert struct {
	ID    string `json:"id"`
	Meter string `json:"meter"`
	// CustomerID limits the alert to one customer; empty means all customers.
	CustomerID string `json:"customer_id,omitempty"`
	// CustomerFilter limits an all-customers alert to customers whose metadata
	// matches: key -> value must equal, "!value" must not equal.
	CustomerFilter map[string]string `json:"customer_filter,omitempty"`
	Threshold      decimal.Decimal   `json:"threshold"`
	Direction      AlertDirection    `json:"direction"`
	// Window, when set, makes the alert rolling: it looks at the meter over
	// the last Window (e.g. 24h) instead of the billing cycle, and may fire
	// again after Cooldown.
	Window   Duration      `json:"window,omitempty"`
	Cooldown Duration      `json:"cooldown,omitempty"`
	Actions  []AlertAction `json:"actions"`
	// CreatedAt bounds what counts: only usage reported after the alert was
	// created counts toward it.
	CreatedAt time.Time `json:"created_at"`
	Archived  bool      `json:"archived,omitempty"`
}

// DefaultAlertCooldown is the re-send cool-down of rolling alerts.
const DefaultAlertCooldown = 24 * time.Hour

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("24h", "90m").
type Duration time.Duration

// MarshalText writes d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Thresholds are a subscription's billing thresholds: crossing one issues an
// early invoice for everything billed so far this cycle and not yet invoiced.
type Thresholds struct {
	// AmountGTE is the monetary threshold in minor units (0 = none). It
	// excludes tax and includes discounts and credits, like Stripe's
	// amount_gte, and must exceed the sum of the plan's fixed fees.
	AmountGTE int64 `json:"amount_gte,omitempty"`
	// UsageGTE maps a meter slug to a usage threshold for that item.
	UsageGTE map[string]decimal.Decimal `json:"usage_gte,omitempty"`
	// ResetBillingCycleAnchor starts a new cycle when a threshold invoice is issued.
	ResetBillingCycleAnchor bool `json:"reset_billing_cycle_anchor,omitempty"`
}
