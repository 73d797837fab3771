// Package workflows holds billcycle's deterministic Temporal workflow code: the
// per-customer BillingCycle and the per-invoice Dunning sequence, with the
// names of their signals, queries and updates, their workflow-ID builders,
// their input and output types, and recorded histories for replay tests.
package workflows

import (
	"time"

	"github.com/shopspring/decimal"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/billcycle/billcycle/activities"
	"github.com/billcycle/billcycle/billing"
)

// TaskQueue is the task queue the billcycle worker polls.
const TaskQueue = "billing"

// Workflow type names, as registered on the worker and started by the front door.
const (
	BillingCycleName = "BillingCycle"
	DunningName      = "Dunning"
)

// CustomerWorkflowID is the id of customer id's BillingCycle workflow.
func CustomerWorkflowID(customerID string) string { return "customer/" + customerID }

// DunningWorkflowID is the id of the dunning sequence of one unpaid invoice.
func DunningWorkflowID(invoiceID string) string { return "dunning/" + invoiceID }

// Signals, queries and updates of the BillingCycle workflow.
const (
	// SignalUsageCrossed nudges the workflow to check usage now: the ingest path
	// sends it when a customer's total passes the watch level the workflow stored.
	SignalUsageCrossed = "usage-crossed"
	// SignalCancel cancels the customer's subscription at once.
	SignalCancel = "cancel"
	// QueryStatus returns a CycleStatus.
	QueryStatus = "status"
	// SignalAccountStatus tells the customer's workflow that dunning moved the
	// account to past_due, suspended or back to active; payload AccountStatus.
	SignalAccountStatus = "account-status"
	// SignalSubscriptionChanged tells the workflow the stored subscription
	// changed (plan, terms, thresholds, cancellation): it reloads it.
	SignalSubscriptionChanged = "subscription-changed"
	// SignalAlertsChanged tells the workflow that the all-customers alerts
	// changed: it reloads its alerts at once. The API sends it to every
	// running BillingCycle with one batch operation.
	SignalAlertsChanged = "alerts-changed"
	// UpdateChangePlan moves the customer to another plan now; argument
	// ChangePlanRequest, result PlanChanged.
	UpdateChangePlan = "change-plan"
	// UpdateSetThresholds replaces the billing thresholds; argument
	// billing.Thresholds, result CycleStatus.
	UpdateSetThresholds = "set-thresholds"
	// UpdateUpsertAlert adds, changes or (archived) removes a usage alert;
	// argument billing.Alert, result CycleStatus.
	UpdateUpsertAlert = "upsert-alert"
)

// AccountStatus is the payload of SignalAccountStatus: the status dunning of
// invoice InvoiceID puts the account in (StatusPastDue, StatusSuspended or
// StatusActive).
type AccountStatus struct {
	Status    string `json:"status"`
	InvoiceID string `json:"invoice_id"`
}

// Search attributes the workflows set, so operators can list and filter
// customers in the Temporal UI and CLI.
var (
	SearchCustomerID = temporal.NewSearchAttributeKeyKeyword("CustomerId")
	SearchPlan       = temporal.NewSearchAttributeKeyKeyword("Plan")
	SearchStatus     = temporal.NewSearchAttributeKeyKeyword("BillingStatus")
	// SearchAmountDue is the amount billed so far this cycle and not yet
	// invoiced, in the currency's minor units.
	SearchAmountDue = temporal.NewSearchAttributeKeyInt64("AmountDue")
	SearchPeriodEnd = temporal.NewSearchAttributeKeyTime("PeriodEnd")
)

// SearchAttributes lists the custom search attributes with their types, for
// registering them on a namespace (the dev server's --search-attribute flags,
// or the operator service).
var SearchAttributes = map[string]enums.IndexedValueType{
	SearchCustomerID.GetName(): enums.INDEXED_VALUE_TYPE_KEYWORD,
	SearchPlan.GetName():       enums.INDEXED_VALUE_TYPE_KEYWORD,
	SearchStatus.GetName():     enums.INDEXED_VALUE_TYPE_KEYWORD,
	SearchAmountDue.GetName():  enums.INDEXED_VALUE_TYPE_INT,
	SearchPeriodEnd.GetName():  enums.INDEXED_VALUE_TYPE_DATETIME,
}

// SignupInput starts a customer's BillingCycle workflow.
type SignupInput struct {
	CustomerID string            `json:"customer_id"`
	Email      string            `json:"email"`
	Name       string            `json:"name"`
	Plan       string            `json:"plan"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	// Carried is the state a run hands to the next one at continue-as-new;
	// callers starting the workflow leave it nil.
	Carried *CycleState `json:"carried,omitempty"`
}

// Customer statuses shown in the BillingStatus search attribute.
const (
	StatusOnboarding = "onboarding"
	StatusActive     = "active"
	StatusTrialing   = "trialing"
	StatusPastDue    = "past_due"
	StatusSuspended  = "suspended"
	StatusCanceled   = "canceled"
)

// CycleStatus answers the status query.
type CycleStatus struct {
	CustomerID       string `json:"customer_id"`
	Plan             string `json:"plan"`
	Status           string `json:"status"`
	StripeCustomerID string `json:"stripe_customer_id,omitempty"`
	// PeriodStart and PeriodEnd bound the current billing period.
	PeriodStart time.Time        `json:"period_start,omitzero"`
	PeriodEnd   time.Time        `json:"period_end,omitzero"`
	TrialEnd    *time.Time       `json:"trial_end,omitempty"`
	Currency    billing.Currency `json:"currency,omitempty"`
	// Usage is each meter's total this period at the last check.
	Usage map[string]decimal.Decimal `json:"usage,omitempty"`
	// AmountSoFar is the period's total so far (minor units); AmountDue the
	// part not yet invoiced; InvoicedEarly what threshold invoices billed.
	AmountSoFar   int64 `json:"amount_so_far"`
	AmountDue     int64 `json:"amount_due"`
	InvoicedEarly int64 `json:"invoiced_early"`
	EarlyInvoices int   `json:"early_invoices"`
	// Thresholds are the billing thresholds; ThresholdsSuppressed says why
	// they are not evaluated now ("trial", "period_end") or is empty.
	Thresholds           billing.Thresholds `json:"thresholds"`
	ThresholdsSuppressed string             `json:"thresholds_suppressed,omitempty"`
	Alerts               []AlertStatus      `json:"alerts,omitempty"`
	// LastCheck and NextCheck are when usage was and will next be read;
	// CheckInterval is the current adaptive interval.
	LastCheck     time.Time `json:"last_check,omitzero"`
	NextCheck     time.Time `json:"next_check,omitzero"`
	CheckInterval string    `json:"check_interval,omitempty"`
	// WatchLevels are the per-meter totals at which ingestion nudges.
	WatchLevels map[string]decimal.Decimal `json:"watch_levels,omitempty"`
	// AccessRevokedBy names the alert that revoked API access, if any.
	AccessRevokedBy string `json:"access_revoked_by,omitempty"`
	// LastError is the last action that failed for good, if any.
	LastError string `json:"last_error,omitempty"`
}

// AlertStatus is one alert as the status query shows it.
type AlertStatus struct {
	Alert billing.Alert `json:"alert"`
	// Value is what the alert compared with its threshold at the last check.
	Value decimal.Decimal `json:"value"`
	// Baseline is the meter total at the alert's creation this period.
	Baseline  decimal.Decimal `json:"baseline"`
	Fired     int             `json:"fired"`
	LastFired time.Time       `json:"last_fired,omitzero"`
}

// UsageCrossed is the payload of SignalUsageCrossed.
type UsageCrossed struct {
	Meter string `json:"meter"`
}

// ChangePlanRequest is the argument of UpdateChangePlan.
type ChangePlanRequest struct {
	PlanID string `json:"plan_id"`
}

// PlanChanged is the result of UpdateChangePlan: the plan and the start of
// the new period under it (the usage before it is invoiced on the old plan).
type PlanChanged struct {
	PlanID      string    `json:"plan_id"`
	EffectiveAt time.Time `json:"effective_at"`
}

// ReadUsageInput asks for a customer's total per meter over events with time
// in [From, To) (activities.UsageActivities.ReadUsage).
type ReadUsageInput = activities.ReadUsageInput

// SetWatchLevelsInput stores, for the period starting at From, the totals per
// meter at which ingestion sends SignalUsageCrossed.
type SetWatchLevelsInput = activities.SetWatchLevelsInput
