// Package workflows holds billcycle's deterministic Temporal workflow code: the
// per-customer BillingCycle and the per-invoice Dunning sequence, with the
// names of their signals, queries and updates, their workflow-ID builders,
// their input and output types, and recorded histories for replay tests.
package workflows

import (
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
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
}
