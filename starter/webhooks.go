package starter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	bcstripe "github.com/billcycle/billcycle/integrations/stripe"
	"github.com/billcycle/billcycle/store"
	"github.com/billcycle/billcycle/workflows"
)

// maxWebhookBytes bounds a Stripe event body; events are tens of kilobytes.
const maxWebhookBytes = 1 << 20

// signalStarter is the part of the Temporal client that starts a workflow
// and signals it in one call; client.Client has it.
type signalStarter interface {
	SignalWithStartWorkflow(ctx context.Context, workflowID string, signalName string, signalArg any,
		options client.StartWorkflowOptions, workflow any, workflowArgs ...any) (client.WorkflowRun, error)
}

type webhookResponse struct {
	Received  bool   `json:"received"`
	Duplicate bool   `json:"duplicate"`
	EventID   string `json:"event_id"`
	Outcome   string `json:"outcome,omitempty"`
}

// stripeWebhook receives Stripe events: it verifies the signature (400 and
// nothing recorded when bad or older than five minutes), acknowledges a
// redelivered event without acting again, and otherwise records the invoice
// state and starts or signals the workflows that do the work.
func (s *Server) stripeWebhook(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.StripeWebhookSecret == "" {
		return &Error{Status: http.StatusServiceUnavailable, Code: "webhooks_disabled",
			Message: "STRIPE_WEBHOOK_SECRET is not set; this server refuses Stripe webhooks"}
	}
	body, err := readBody(w, r, maxWebhookBytes)
	if err != nil {
		return err
	}
	// Stripe renders an event in the API version of the endpoint, which may
	// be newer than the one stripe-go v76 pins; we read only fields stable
	// across versions, so a mismatch is not an error.
	ev, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), s.cfg.StripeWebhookSecret,
		webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_signature", Field: "Stripe-Signature", Message: err.Error()}
	}
	if ev.ID == "" || ev.Data == nil {
		return Invalid("", "event has no id or data")
	}
	objectID, _ := ev.Data.Object["id"].(string)
	processed, err := s.store.ClaimStripeEvent(r.Context(), store.StripeEvent{
		ID: ev.ID, Type: string(ev.Type), ObjectID: objectID, CreatedAt: time.Unix(ev.Created, 0).UTC()})
	if err != nil {
		return err
	}
	if processed {
		writeJSON(w, http.StatusOK, webhookResponse{Received: true, Duplicate: true, EventID: ev.ID})
		return nil
	}
	outcome, err := s.handleStripeEvent(r.Context(), r, ev)
	if err != nil {
		// 500: Stripe redelivers, and the event is processed again (every step is idempotent).
		return fmt.Errorf("stripe event %s (%s): %w", ev.ID, ev.Type, err)
	}
	if err := s.store.FinishStripeEvent(r.Context(), ev.ID, outcome); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "stripe event", "id", ev.ID, "type", ev.Type, "object", objectID, "outcome", outcome)
	writeJSON(w, http.StatusOK, webhookResponse{Received: true, EventID: ev.ID, Outcome: outcome})
	return nil
}

// handleStripeEvent acts on one new event and says what it did.
func (s *Server) handleStripeEvent(ctx context.Context, r *http.Request, ev stripego.Event) (string, error) {
	at := time.Unix(ev.Created, 0).UTC()
	switch ev.Type {
	case "invoice.payment_failed", "invoice.payment_succeeded", "invoice.paid", "invoice.finalized",
		"invoice.voided", "invoice.marked_uncollectible":
		var inv stripego.Invoice
		if err := json.Unmarshal(ev.Data.Raw, &inv); err != nil || inv.ID == "" {
			return "", Invalid("data.object", "is not an invoice: %v", err)
		}
		return s.invoiceEvent(ctx, string(ev.Type), at, &inv)
	case "charge.dispute.created", "charge.dispute.closed":
		var d stripego.Dispute
		if err := json.Unmarshal(ev.Data.Raw, &d); err != nil || d.ID == "" {
			return "", Invalid("data.object", "is not a dispute: %v", err)
		}
		return s.disputeEvent(ctx, ev.Type == "charge.dispute.created", at, &d)
	case "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted":
		var sub stripego.Subscription
		if err := json.Unmarshal(ev.Data.Raw, &sub); err != nil || sub.ID == "" {
			return "", Invalid("data.object", "is not a subscription: %v", err)
		}
		return s.subscriptionEvent(ctx, r, string(ev.Type), &sub)
	}
	return "ignored: unhandled event type", nil
}

// invoiceStatusOf reads the status an invoice event reports.
func invoiceStatusOf(typ string, inv *stripego.Invoice) string {
	switch {
	case inv.Paid || typ == "invoice.paid" || typ == "invoice.payment_succeeded":
		return store.InvoicePaid
	case typ == "invoice.voided":
		return store.InvoiceVoid
	case typ == "invoice.marked_uncollectible":
		return store.InvoiceUncollectible
	case inv.Status != "":
		return string(inv.Status)
	}
	return store.InvoiceOpen
}

// dunningInvoiceID is the id of the Dunning workflow of a Stripe invoice:
// billcycle's invoice id when billcycle issued it, else Stripe's.
func dunningInvoiceID(stripeID string, metadata map[string]string) string {
	if id := metadata[bcstripe.MetadataInvoiceID]; id != "" {
		return id
	}
	return stripeID
}

func (s *Server) invoiceEvent(ctx context.Context, typ string, at time.Time, inv *stripego.Invoice) (string, error) {
	cust, found, err := s.customerFor(ctx, inv.Customer, inv.Metadata)
	if err != nil {
		return "", err
	}
	invoiceID := dunningInvoiceID(inv.ID, inv.Metadata)
	st := store.InvoiceState{StripeInvoiceID: inv.ID, InvoiceID: invoiceID, CustomerID: cust.ID,
		Status: invoiceStatusOf(typ, inv), AmountRemaining: inv.AmountRemaining, Currency: string(inv.Currency), EventCreated: at}
	if inv.Charge != nil {
		st.ChargeID = inv.Charge.ID
	}
	if inv.PaymentIntent != nil {
		st.PaymentIntentID = inv.PaymentIntent.ID
	}
	if inv.DueDate > 0 {
		due := time.Unix(inv.DueDate, 0).UTC()
		st.DueAt = &due
	}
	// The merged state, not this event's snapshot, decides: a failure
	// delivered after the payment that followed it finds the invoice paid.
	cur, err := s.store.ApplyInvoiceEvent(ctx, st)
	if err != nil {
		return "", err
	}
	wid := workflows.DunningWorkflowID(invoiceID)
	switch typ {
	case "invoice.payment_failed":
		if cur.Status != store.InvoiceOpen {
			return "ignored: invoice already " + cur.Status, nil
		}
		if !found {
			return "ignored: no billcycle customer for this invoice", nil
		}
		return s.startDunning(ctx, workflows.DunningInput{
			InvoiceID: invoiceID, StripeInvoiceID: inv.ID, CustomerID: cust.ID, PlanID: cust.Plan,
			StartedAt: at, Reason: workflows.DunningReasonPaymentFailed,
			AmountDue: inv.AmountRemaining, Currency: string(inv.Currency), HostedURL: inv.HostedInvoiceURL,
		}, workflows.PaymentFailed{AttemptCount: inv.AttemptCount, At: at})
	case "invoice.paid", "invoice.payment_succeeded":
		return s.signalIfRunning(ctx, wid, workflows.SignalPaid, workflows.InvoicePaid{At: at, OutOfBand: inv.PaidOutOfBand})
	case "invoice.voided":
		return s.signalIfRunning(ctx, wid, workflows.SignalVoided, workflows.InvoiceSettled{At: at})
	case "invoice.marked_uncollectible":
		return s.signalIfRunning(ctx, wid, workflows.SignalMarkedUncollectible, workflows.InvoiceSettled{At: at})
	}
	return "recorded invoice " + cur.Status, nil
}

// startDunning starts the invoice's Dunning workflow, or signals the running
// one about another failed attempt. An invoice whose dunning already ended is
// never dunned again.
func (s *Server) startDunning(ctx context.Context, in workflows.DunningInput, failed workflows.PaymentFailed) (string, error) {
	ss, ok := s.temporal.(signalStarter)
	if !ok {
		return "", errors.New("the Temporal client cannot signal-with-start")
	}
	opts := client.StartWorkflowOptions{
		ID:                       workflows.DunningWorkflowID(in.InvoiceID),
		TaskQueue:                s.cfg.TaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes:    workflows.DunningSearchAttributes(in),
		StaticSummary:            fmt.Sprintf("Dunning of invoice %s of %s", in.InvoiceID, in.CustomerID),
	}
	_, err := ss.SignalWithStartWorkflow(ctx, opts.ID, workflows.SignalPaymentFailed, failed, opts, workflows.DunningName, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return "ignored: dunning of this invoice already ended", nil
	}
	if err != nil {
		return "", fmt.Errorf("start dunning of %s: %w", in.InvoiceID, err)
	}
	return "dunning " + opts.ID, nil
}

// signalIfRunning signals a workflow; one that is not running needs nothing.
func (s *Server) signalIfRunning(ctx context.Context, workflowID, signal string, arg any) (string, error) {
	err := s.temporal.SignalWorkflow(ctx, workflowID, "", signal, arg)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return "recorded; " + workflowID + " is not running", nil
	}
	if err != nil {
		return "", fmt.Errorf("signal %s to %s: %w", signal, workflowID, err)
	}
	return "signalled " + signal + " to " + workflowID, nil
}

// disputeEvent pauses or resumes the dunning of the disputed charge's invoice.
func (s *Server) disputeEvent(ctx context.Context, opened bool, at time.Time, d *stripego.Dispute) (string, error) {
	var st store.InvoiceState
	err := store.ErrNotFound
	if d.Charge != nil && d.Charge.Invoice != nil && d.Charge.Invoice.ID != "" {
		st, err = s.store.InvoiceStateByStripeID(ctx, d.Charge.Invoice.ID)
	}
	if errors.Is(err, store.ErrNotFound) {
		var charge, pi string
		if d.Charge != nil {
			charge = d.Charge.ID
		}
		if d.PaymentIntent != nil {
			pi = d.PaymentIntent.ID
		}
		st, err = s.store.InvoiceStateForPayment(ctx, charge, pi)
	}
	if errors.Is(err, store.ErrNotFound) {
		return "ignored: no invoice known for the disputed charge", nil
	}
	if err != nil {
		return "", err
	}
	signal := workflows.SignalDisputeClosed
	if opened {
		signal = workflows.SignalDisputeOpened
	}
	wid := workflows.DunningWorkflowID(dunningInvoiceID(st.StripeInvoiceID, map[string]string{bcstripe.MetadataInvoiceID: st.InvoiceID}))
	return s.signalIfRunning(ctx, wid, signal, workflows.Dispute{DisputeID: d.ID, At: at})
}

// subscriptionEvent starts the customer's BillingCycle when Stripe reports a
// new subscription, and cancels it when Stripe's subscription ends.
func (s *Server) subscriptionEvent(ctx context.Context, r *http.Request, typ string, sub *stripego.Subscription) (string, error) {
	cust, found, err := s.customerFor(ctx, sub.Customer, sub.Metadata)
	if err != nil {
		return "", err
	}
	switch {
	case typ == "customer.subscription.created":
		if !found {
			if cust, err = s.customerFromStripe(ctx, sub); err != nil {
				return "", err
			}
		}
		run, err := s.startCustomer(r.WithContext(ctx), cust)
		if err != nil {
			return "", err
		}
		return "started " + run.GetID(), nil
	case !found:
		return "ignored: no billcycle customer for this subscription", nil
	case typ == "customer.subscription.deleted" || sub.Status == stripego.SubscriptionStatusCanceled:
		return s.signalIfRunning(ctx, workflows.CustomerWorkflowID(cust.ID), workflows.SignalCancel, nil)
	}
	return "recorded subscription " + string(sub.Status), nil
}

// customerFromStripe creates the billcycle customer of a subscription made in
// Stripe: its id is the billcycle_customer_id metadata or else the Stripe
// customer id; its plan the billcycle_plan metadata or the first price's
// lookup key.
func (s *Server) customerFromStripe(ctx context.Context, sub *stripego.Subscription) (store.Customer, error) {
	if sub.Customer == nil || sub.Customer.ID == "" {
		return store.Customer{}, Invalid("data.object.customer", "is required")
	}
	c := store.Customer{ID: sub.Customer.ID, Email: sub.Customer.Email, Name: sub.Customer.Name,
		Plan: sub.Metadata["billcycle_plan"], Metadata: map[string]string{"stripe_customer_id": sub.Customer.ID}}
	for _, m := range []map[string]string{sub.Metadata, sub.Customer.Metadata} {
		if id := m[bcstripe.MetadataCustomerID]; id != "" {
			c.ID = id
			break
		}
	}
	if c.Plan == "" && sub.Items != nil && len(sub.Items.Data) > 0 && sub.Items.Data[0].Price != nil {
		c.Plan = sub.Items.Data[0].Price.LookupKey
	}
	if !idPattern.MatchString(c.ID) {
		return store.Customer{}, Invalid("data.object.customer", "customer id %q is not a valid billcycle id", c.ID)
	}
	got, _, err := s.store.CreateCustomer(ctx, c)
	if err != nil {
		return store.Customer{}, err
	}
	if got.StripeCustomerID == "" {
		if err := s.store.SetStripeCustomerID(ctx, got.ID, sub.Customer.ID); err != nil {
			return store.Customer{}, err
		}
		got.StripeCustomerID = sub.Customer.ID
	}
	return got, nil
}

// customerFor maps a Stripe customer to ours: the billcycle_customer_id
// metadata (on the customer when expanded, else on the object), else the
// customer whose stripe_customer_id it is.
func (s *Server) customerFor(ctx context.Context, sc *stripego.Customer, objectMeta map[string]string) (store.Customer, bool, error) {
	var ids []string
	if sc != nil {
		ids = append(ids, sc.Metadata[bcstripe.MetadataCustomerID])
	}
	ids = append(ids, objectMeta[bcstripe.MetadataCustomerID])
	for _, id := range ids {
		if id == "" {
			continue
		}
		c, err := s.store.Customer(ctx, id)
		if err == nil {
			return c, true, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return store.Customer{}, false, err
		}
	}
	if sc == nil || sc.ID == "" {
		return store.Customer{}, false, nil
	}
	c, err := s.store.CustomerByStripeID(ctx, sc.ID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Customer{}, false, nil
	}
	if err != nil {
		return store.Customer{}, false, err
	}
	return c, true, nil
}
