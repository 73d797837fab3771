package workflows

import (
	"time"

	"github.com/shopspring/decimal"

	"github.com/billcycle/billcycle/billing"
)

// CycleState is everything a BillingCycle run knows, in one serializable
// value so that continue-as-new carries it whole to the next run.
type CycleState struct {
	Onboarded        bool   `json:"onboarded"`
	StripeCustomerID string `json:"stripe_customer_id,omitempty"`
	// Status is the account status (StatusActive, StatusPastDue, ...);
	// StatusTrialing is derived from the subscription when shown.
	Status string `json:"status"`

	// Sub is the subscription (nil until the customer has one); Plan and
	// Thresholds come with it. The workflow owns the cycle anchor: reloads
	// keep Sub.Anchor unless the plan changes.
	Sub        *billing.Subscription `json:"sub,omitempty"`
	Plan       billing.Plan          `json:"plan"`
	Thresholds billing.Thresholds    `json:"thresholds"`
	// NeedReload asks the next run step to reload the subscription.
	NeedReload bool `json:"need_reload,omitempty"`
	// CreditCarry is credit (minor units) owed to the customer because early
	// invoices billed more than a whole cycle cost; it is added to the credit
	// balance when rating later cycles.
	CreditCarry int64 `json:"credit_carry,omitempty"`

	// Period is the current billing period.
	Period billing.Period `json:"period"`
	// Usage is each meter's period total at LastCheck, PrevUsage at PrevCheck.
	Usage     map[string]decimal.Decimal `json:"usage,omitempty"`
	PrevUsage map[string]decimal.Decimal `json:"prev_usage,omitempty"`
	LastCheck time.Time                  `json:"last_check,omitzero"`
	PrevCheck time.Time                  `json:"prev_check,omitzero"`
	// Moved is whether usage moved between the last two checks.
	Moved bool `json:"moved,omitempty"`
	// Billed is Rate over the period's billable usage at LastCheck.
	Billed billing.Invoice `json:"billed"`

	// LastIssued is the cumulative invoice behind the last early (threshold)
	// invoice this period, IssuedUsage the billable usage it rated and
	// EarlyInvoices how many were issued.
	LastIssued    billing.Invoice            `json:"last_issued"`
	IssuedUsage   map[string]decimal.Decimal `json:"issued_usage,omitempty"`
	EarlyInvoices int                        `json:"early_invoices,omitempty"`

	// Alerts are the alert rules by id; AlertStates what fired and when.
	Alerts         map[string]billing.Alert      `json:"alerts,omitempty"`
	AlertStates    map[string]billing.AlertState `json:"alert_states,omitempty"`
	AlertValues    map[string]decimal.Decimal    `json:"alert_values,omitempty"`
	AlertsLoadedAt time.Time                     `json:"alerts_loaded_at,omitzero"`
	// AccessRevokedBy names the alert that revoked API access; access is
	// granted again when a new period starts.
	AccessRevokedBy string `json:"access_revoked_by,omitempty"`

	// Interval is the adaptive check interval; NextCheck the next check.
	Interval  time.Duration `json:"interval"`
	NextCheck time.Time     `json:"next_check,omitzero"`
	// Watch are the watch levels last stored for ingestion.
	Watch map[string]decimal.Decimal `json:"watch,omitempty"`

	// DueInvoices are issued send_invoice invoices whose due date has not
	// come yet: when it passes, the cycle starts their Dunning as a child
	// (which ends at once if the invoice was paid meanwhile).
	DueInvoices []DueInvoice `json:"due_invoices,omitempty"`

	LastError string `json:"last_error,omitempty"`
	// Runs counts the runs of this customer's cycle (continue-as-new).
	Runs int `json:"runs"`
}

// DueInvoice is an issued invoice the customer pays by its due date.
type DueInvoice struct {
	InvoiceID       string           `json:"invoice_id"`
	StripeInvoiceID string           `json:"stripe_invoice_id,omitempty"`
	PlanID          string           `json:"plan_id"`
	Total           int64            `json:"total"`
	Currency        billing.Currency `json:"currency"`
	DueAt           time.Time        `json:"due_at"`
}
