package workflows

import (
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/billcycle/billcycle/billing"
)

// Signals and the query of the Dunning workflow (id DunningWorkflowID).
const (
	// SignalPaymentFailed reports another failed payment attempt (payload
	// PaymentFailed); the webhook signals-with-start the workflow with it.
	SignalPaymentFailed = "payment-failed"
	// SignalPaid stops the sequence at once: the invoice was paid (payload InvoicePaid).
	SignalPaid = "paid"
	// SignalVoided stops the sequence silently: the invoice was voided (payload InvoiceSettled).
	SignalVoided = "voided"
	// SignalMarkedUncollectible stops the sequence: the invoice was written
	// off outside dunning (payload InvoiceSettled).
	SignalMarkedUncollectible = "marked-uncollectible"
	// SignalDisputeOpened pauses the dunning clock (payload Dispute).
	SignalDisputeOpened = "dispute-opened"
	// SignalDisputeClosed resumes it once no dispute is open (payload Dispute).
	SignalDisputeClosed = "dispute-closed"
	// SignalPolicyChanged replaces the policy for the steps still ahead
	// (payload billing.Policy).
	SignalPolicyChanged = "policy-changed"
	// QueryDunningStatus returns a DunningStatus.
	QueryDunningStatus = "status"
)

// Why a dunning sequence started.
const (
	// DunningReasonPaymentFailed: Stripe reported a failed payment.
	DunningReasonPaymentFailed = "payment_failed"
	// DunningReasonPastDue: a send_invoice invoice's due date passed unpaid.
	DunningReasonPastDue = "past_due"
)

// Outcomes of a dunning sequence.
const (
	DunningRunning       = "running"
	DunningPaid          = "paid"
	DunningVoided        = "voided"
	DunningUncollectible = "uncollectible"
	// DunningAlreadySettled: the invoice was paid or voided before the
	// sequence began (events arrived out of order); nothing was sent.
	DunningAlreadySettled = "already_settled"
	// DunningExhausted: every step ran and the invoice stayed unpaid for
	// DunningSettleWindow after the last one.
	DunningExhausted = "exhausted"
)

// DunningSettleWindow is how long a sequence whose steps have all run keeps
// waiting for payment (to restore access) before it ends as exhausted.
const DunningSettleWindow = 90 * 24 * time.Hour

// DunningInput starts a Dunning workflow.
type DunningInput struct {
	// InvoiceID is billcycle's invoice id (the billcycle_invoice_id metadata
	// of the Stripe invoice), so the webhook and the billing-cycle timer reach
	// the same workflow; for a Stripe invoice billcycle did not issue it is the
	// Stripe id.
	InvoiceID       string `json:"invoice_id"`
	StripeInvoiceID string `json:"stripe_invoice_id,omitempty"`
	CustomerID      string `json:"customer_id"`
	PlanID          string `json:"plan_id,omitempty"`
	// Policy, when nil, is loaded from the plan (or the default policy) by
	// the workflow's first activity.
	Policy *billing.Policy `json:"policy,omitempty"`
	// StartedAt starts the dunning clock: the failed payment or the due
	// date. Zero means the workflow's start.
	StartedAt time.Time `json:"started_at"`
	// Reason is DunningReasonPaymentFailed or DunningReasonPastDue.
	Reason string `json:"reason"`
	// AmountDue, Currency and HostedURL are passed to notice templates.
	AmountDue int64  `json:"amount_due,omitempty"`
	Currency  string `json:"currency,omitempty"`
	HostedURL string `json:"hosted_url,omitempty"`
}

// PaymentFailed is the payload of SignalPaymentFailed.
type PaymentFailed struct {
	AttemptCount int64     `json:"attempt_count"`
	At           time.Time `json:"at"`
}

// InvoicePaid is the payload of SignalPaid.
type InvoicePaid struct {
	At        time.Time `json:"at"`
	OutOfBand bool      `json:"out_of_band,omitempty"`
}

// InvoiceSettled is the payload of SignalVoided and SignalMarkedUncollectible.
type InvoiceSettled struct {
	At time.Time `json:"at"`
}

// Dispute is the payload of SignalDisputeOpened and SignalDisputeClosed. At is
// the Stripe event's creation time: a dispute's later event wins, so a
// closed event delivered before its created event leaves the clock running.
type Dispute struct {
	DisputeID string    `json:"dispute_id"`
	At        time.Time `json:"at"`
}

// DunningStepRecord is a step the sequence ran.
type DunningStepRecord struct {
	Index  int                   `json:"index"`
	Action billing.DunningAction `json:"action"`
	At     time.Time             `json:"at"`
	Policy string                `json:"policy"`
}

// DunningStatus answers QueryDunningStatus and is the workflow's result.
type DunningStatus struct {
	InvoiceID  string `json:"invoice_id"`
	CustomerID string `json:"customer_id"`
	PolicyID   string `json:"policy_id"`
	// PolicyRevision counts the policy changes this sequence took.
	PolicyRevision int `json:"policy_revision"`
	// Step is the index of the next step in the policy; equal to StepsTotal
	// once all ran.
	Step       int                   `json:"step"`
	StepsTotal int                   `json:"steps_total"`
	NextAction billing.DunningAction `json:"next_action,omitempty"`
	// NextActionAt is when the next step runs; nil while paused or done.
	NextActionAt *time.Time `json:"next_action_at,omitempty"`
	Paused       bool       `json:"paused"`
	OpenDisputes []string   `json:"open_disputes,omitempty"`
	// Elapsed is the dunning clock: time since the start, minus time paused.
	Elapsed billing.Duration `json:"elapsed"`
	// AccountStatus is what dunning made the account: past_due or suspended.
	AccountStatus string `json:"account_status"`
	// Suspended says whether dunning revoked access (and restores it on payment).
	Suspended      bool                `json:"suspended"`
	FailedAttempts int64               `json:"failed_attempts"`
	Outcome        string              `json:"outcome"`
	Done           []DunningStepRecord `json:"done,omitempty"`
}

// DunningSearchAttributes are the search attributes a Dunning workflow starts
// with: CustomerId, Plan and BillingStatus past_due.
func DunningSearchAttributes(in DunningInput) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(
		SearchCustomerID.ValueSet(in.CustomerID),
		SearchPlan.ValueSet(in.PlanID),
		SearchStatus.ValueSet(StatusPastDue),
	)
}

// DunningChildOptions are the options for starting the Dunning workflow of
// in.InvoiceID as a child of the customer's BillingCycle (when a send_invoice
// invoice's due date passes unpaid): the child outlives its parent
// (ABANDON), and an invoice already dunned (by a failed-payment webhook, or
// a sequence that ended) is never dunned again (REJECT_DUPLICATE: the start
// fails with a WorkflowExecutionAlreadyStarted error, which the caller
// ignores).
func DunningChildOptions(in DunningInput) workflow.ChildWorkflowOptions {
	return workflow.ChildWorkflowOptions{
		WorkflowID:            DunningWorkflowID(in.InvoiceID),
		ParentClosePolicy:     enums.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: DunningSearchAttributes(in),
		StaticSummary:         "Dunning of invoice " + in.InvoiceID + " of " + in.CustomerID,
	}
}
