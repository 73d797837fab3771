package starter

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/store"
	"github.com/billcycle/billcycle/workflows"
)

// updater is the part of client.Client that sends workflow updates; the
// server uses it when its Temporal client has it.
type updater interface {
	UpdateWorkflow(ctx context.Context, options client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error)
}

// maxDaysUntilDue bounds the payment term of send_invoice subscriptions.
const maxDaysUntilDue = 365

// subscriptionRequest is the body of PUT /v1/customers/{id}/subscription. It
// replaces the subscription; omitted anchor and status keep the current ones
// (a new subscription is anchored now and is active, or trialing until
// trial_end).
type subscriptionRequest struct {
	PlanID           string              `json:"plan_id"`
	Anchor           *string             `json:"anchor"`
	TrialEnd         *string             `json:"trial_end"`
	Status           billing.Status      `json:"status"`
	Discounts        []billing.Discount  `json:"discounts"`
	CreditBalance    int64               `json:"credit_balance"`
	TaxRate          decimal.Decimal     `json:"tax_rate"`
	CollectionMethod string              `json:"collection_method"`
	DaysUntilDue     int                 `json:"days_until_due"`
	Thresholds       *billing.Thresholds `json:"thresholds"`
}

// subscriptionView is a subscription as the API shows it, with the billing
// period in progress.
type subscriptionView struct {
	store.SubscriptionRecord
	CurrentPeriod billing.Period `json:"current_period"`
	InTrial       bool           `json:"in_trial"`
}

func (s *Server) subView(rec store.SubscriptionRecord, plan billing.Plan) subscriptionView {
	now := s.now().UTC()
	return subscriptionView{SubscriptionRecord: rec, CurrentPeriod: billing.PeriodAt(rec.Anchor, plan.Interval, now), InTrial: rec.InTrial(now)}
}

// pathCustomer returns the customer named in the path, or a 404.
func (s *Server) pathCustomer(r *http.Request) (store.Customer, error) {
	id := r.PathValue("id")
	c, err := s.store.Customer(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Customer{}, NotFound("customer " + strconv.Quote(id))
	}
	return c, err
}

// loadSubscription returns the customer's subscription and plan, or a 404.
func (s *Server) loadSubscription(ctx context.Context, customerID string) (store.SubscriptionRecord, billing.Plan, error) {
	rec, err := s.store.SubscriptionRecord(ctx, customerID)
	if errors.Is(err, store.ErrNotFound) {
		return rec, billing.Plan{}, NotFound("subscription of customer " + strconv.Quote(customerID))
	}
	if err != nil {
		return rec, billing.Plan{}, err
	}
	plan, err := s.store.Plan(ctx, rec.PlanID)
	return rec, plan, err
}

// getCustomer answers GET /v1/customers/{id}: the customer and its
// subscription (null without one).
func (s *Server) getCustomer(w http.ResponseWriter, r *http.Request) error {
	c, err := s.pathCustomer(r)
	if err != nil {
		return err
	}
	out := map[string]any{"customer": c, "subscription": nil}
	rec, plan, err := s.loadSubscription(r.Context(), c.ID)
	var apiErr *Error
	switch {
	case err == nil:
		out["subscription"] = s.subView(rec, plan)
	case !errors.As(err, &apiErr):
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request) error {
	c, err := s.pathCustomer(r)
	if err != nil {
		return err
	}
	rec, plan, err := s.loadSubscription(r.Context(), c.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.subView(rec, plan))
	return nil
}

// putSubscription creates or changes a customer's subscription (PUT
// /v1/customers/{id}/subscription) and tells the customer's running workflow.
func (s *Server) putSubscription(w http.ResponseWriter, r *http.Request) error {
	c, err := s.pathCustomer(r)
	if err != nil {
		return err
	}
	var req subscriptionRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := checkID("plan_id", req.PlanID); err != nil {
		return err
	}
	plan, err := s.store.Plan(r.Context(), req.PlanID)
	if errors.Is(err, store.ErrNotFound) {
		return Invalid("plan_id", "unknown plan %q", req.PlanID)
	}
	if err != nil {
		return err
	}
	old, err := s.store.SubscriptionRecord(r.Context(), c.ID)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	now := s.now().UTC()
	anchor, err := parseTime("anchor", req.Anchor)
	if err != nil {
		return err
	}
	trialEnd, err := parseTime("trial_end", req.TrialEnd)
	if err != nil {
		return err
	}
	rec := store.SubscriptionRecord{
		Subscription: billing.Subscription{
			CustomerID: c.ID, PlanID: plan.ID, TrialEnd: trialEnd, Status: req.Status, Discounts: req.Discounts,
			CreditBalance: req.CreditBalance, TaxRate: req.TaxRate, Currency: plan.Currency,
		},
		CollectionMethod: req.CollectionMethod, DaysUntilDue: req.DaysUntilDue,
	}
	switch {
	case anchor != nil:
		rec.Anchor = *anchor
	case exists:
		rec.Anchor = old.Anchor
	default:
		rec.Anchor = now.Truncate(time.Second)
	}
	switch {
	case rec.Status != "":
	case exists:
		rec.Status = old.Status
		if old.Status == billing.Trialing && !rec.InTrial(now) {
			rec.Status = billing.Active
		}
	case rec.InTrial(now):
		rec.Status = billing.Trialing
	default:
		rec.Status = billing.Active
	}
	if req.Thresholds != nil {
		rec.Thresholds = *req.Thresholds
	}
	if err := validateTerms(rec, plan); err != nil {
		return err
	}
	if err := rec.Subscription.Validate(); err != nil {
		return fieldInvalid("", err)
	}
	got, created, err := s.store.PutSubscription(r.Context(), rec)
	if err != nil {
		return fieldInvalid("", err)
	}
	notice := s.notifySubscriptionChange(r.Context(), c.ID, old, got, exists)
	if notice.Notified {
		// the workflow may have re-anchored the cycle (plan change)
		if again, err := s.store.SubscriptionRecord(r.Context(), c.ID); err == nil {
			got = again
		}
	}
	out := map[string]any{"subscription": s.subView(got, plan), "created": created, "workflow": notice}
	writeJSON(w, createdStatus(created), out)
	return nil
}

// parseTime reads an optional RFC 3339 time field.
func parseTime(field string, v *string) (*time.Time, error) {
	if v == nil {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, *v)
	if err != nil {
		return nil, Invalid(field, "must be an RFC 3339 time such as 2026-01-31T00:00:00Z")
	}
	t = t.UTC()
	return &t, nil
}

// validateTerms checks what billing.Subscription.Validate does not: the
// collection terms and the thresholds against the plan.
func validateTerms(rec store.SubscriptionRecord, plan billing.Plan) error {
	switch rec.CollectionMethod {
	case "", store.ChargeAutomatically:
		if rec.DaysUntilDue != 0 {
			return Invalid("days_until_due", "applies only to collection_method send_invoice")
		}
	case store.SendInvoice:
		if rec.DaysUntilDue < 1 || rec.DaysUntilDue > maxDaysUntilDue {
			return Invalid("days_until_due", "must be between 1 and %d with collection_method send_invoice", maxDaysUntilDue)
		}
	default:
		return Invalid("collection_method", "must be %q or %q", store.ChargeAutomatically, store.SendInvoice)
	}
	var fixed int64
	priced := map[string]bool{}
	for _, p := range plan.Products {
		fixed += p.FlatFee
		for _, mp := range p.Prices {
			priced[mp.Meter] = true
		}
	}
	th := rec.Thresholds
	switch {
	case th.AmountGTE < 0:
		return Invalid("thresholds.amount_gte", "must not be negative")
	case th.AmountGTE > 0 && th.AmountGTE <= fixed:
		return Invalid("thresholds.amount_gte", "must exceed the plan's fixed fees of %s, or every cycle would cross it",
			billing.NewMoney(fixed, plan.Currency))
	}
	for m, q := range th.UsageGTE {
		switch {
		case !priced[m]:
			return Invalid("thresholds.usage_gte."+m, "plan %q prices no meter %q", plan.ID, m)
		case !q.IsPositive():
			return Invalid("thresholds.usage_gte."+m, "must be greater than 0")
		}
	}
	return nil
}

// workflowNotice says how the customer's workflow heard of a change.
type workflowNotice struct {
	WorkflowID string   `json:"workflow_id"`
	Notified   bool     `json:"notified"`
	Sent       []string `json:"sent,omitempty"`
	Error      string   `json:"error,omitempty"`
}

// notifySubscriptionChange tells the customer's BillingCycle about a subscription change:
// update change-plan when the plan changed (nothing more when the workflow
// refuses it), update set-thresholds when the thresholds changed, and signal
// subscription-changed for every change.
// A workflow that is not running is not an error: it reads the subscription
// when it starts.
func (s *Server) notifySubscriptionChange(ctx context.Context, customerID string, old, cur store.SubscriptionRecord, existed bool) workflowNotice {
	n := workflowNotice{WorkflowID: workflows.CustomerWorkflowID(customerID)}
	planChanged := existed && old.PlanID != cur.PlanID
	// A new subscription reaches the workflow by the signal alone: it loads
	// the stored terms and thresholds.
	thresholdsChanged := existed && !reflect.DeepEqual(old.Thresholds, cur.Thresholds)
	up, canUpdate := s.temporal.(updater)
	send := func(name string, update bool, arg any) bool {
		var err error
		if update {
			var h client.WorkflowUpdateHandle
			h, err = up.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: n.WorkflowID, UpdateName: name,
				Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted})
			if err == nil {
				err = h.Get(ctx, nil)
			}
		} else {
			err = s.temporal.SignalWorkflow(ctx, n.WorkflowID, "", name, arg)
		}
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
			return false
		case err != nil:
			s.log.WarnContext(ctx, "telling the workflow of a subscription change failed", "workflow", n.WorkflowID, "name", name, "err", err)
			n.Error = name + ": " + err.Error()
			return false
		}
		n.Sent = append(n.Sent, name)
		n.Notified = true
		return true
	}
	if canUpdate && planChanged {
		// The workflow invoices the old plan's usage so far, re-anchors the
		// cycle at the change and reloads the thresholds stored above.
		if !send(workflows.UpdateChangePlan, true, workflows.ChangePlanRequest{PlanID: cur.PlanID}) {
			return n
		}
	}
	if canUpdate && thresholdsChanged && !planChanged {
		send(workflows.UpdateSetThresholds, true, cur.Thresholds)
	}
	send(workflows.SignalSubscriptionChanged, false, nil)
	return n
}
