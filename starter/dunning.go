package starter

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/workflows"
)

// workflowLister is the part of the Temporal client that lists workflows by
// visibility query; client.Client has it.
type workflowLister interface {
	ListWorkflow(ctx context.Context, request *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
}

type dunningPolicyResponse struct {
	PlanID string         `json:"plan_id"`
	Policy billing.Policy `json:"policy"`
	// Default is true when the plan has no policy of its own.
	Default bool `json:"default"`
	// Signalled counts the running dunning sequences of the plan that took
	// the new policy (PUT only).
	Signalled *int `json:"signalled,omitempty"`
}

func planIDFrom(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !idPattern.MatchString(id) {
		return "", Invalid("id", "must be a plan id of letters, digits and _.:@-")
	}
	return id, nil
}

// getDunningPolicy answers the plan's dunning policy, or the default one.
func (s *Server) getDunningPolicy(w http.ResponseWriter, r *http.Request) error {
	planID, err := planIDFrom(r)
	if err != nil {
		return err
	}
	p, ok, err := s.store.DunningPolicy(r.Context(), planID)
	if err != nil {
		return err
	}
	if !ok {
		p = billing.DefaultPolicy()
	}
	writeJSON(w, http.StatusOK, dunningPolicyResponse{PlanID: planID, Policy: p, Default: !ok})
	return nil
}

// putDunningPolicy validates and stores the plan's dunning policy. New
// sequences use it; running sequences of the plan get it by the
// policy-changed signal and apply it to the steps still ahead of them.
func (s *Server) putDunningPolicy(w http.ResponseWriter, r *http.Request) error {
	planID, err := planIDFrom(r)
	if err != nil {
		return err
	}
	var p billing.Policy
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &p); err != nil {
		return err
	}
	if p.ID == "" {
		p.ID = planID
	}
	if err := p.Validate(); err != nil {
		var fe *billing.FieldError
		if errors.As(err, &fe) {
			return Invalid(fe.Field, "%s", fe.Message)
		}
		return Invalid("", "%v", err)
	}
	if _, err := s.store.PutDunningPolicy(r.Context(), planID, p); err != nil {
		return err
	}
	n, err := s.signalPolicyChange(r.Context(), planID, p)
	if err != nil {
		// The policy is stored and new sequences use it; the running ones keep theirs.
		s.log.WarnContext(r.Context(), "could not signal running dunning sequences", "plan", planID, "err", err)
	}
	writeJSON(w, http.StatusOK, dunningPolicyResponse{PlanID: planID, Policy: p, Signalled: &n})
	return nil
}

// signalPolicyChange sends p to every running Dunning workflow of planID
// (found through the Plan search attribute) and returns how many took it.
func (s *Server) signalPolicyChange(ctx context.Context, planID string, p billing.Policy) (int, error) {
	lister, ok := s.temporal.(workflowLister)
	if !ok {
		return 0, errors.New("the Temporal client cannot list workflows")
	}
	query := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running' AND %s = '%s'",
		workflows.DunningName, workflows.SearchPlan.GetName(), planID) // planID matched idPattern: no quotes
	n := 0
	var token []byte
	for {
		resp, err := lister.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: s.cfg.TemporalNamespace, Query: query, NextPageToken: token})
		if err != nil {
			return n, fmt.Errorf("list dunning of plan %s: %w", planID, err)
		}
		for _, ex := range resp.Executions {
			id := ex.GetExecution().GetWorkflowId()
			if err := s.temporal.SignalWorkflow(ctx, id, "", workflows.SignalPolicyChanged, p); err != nil {
				s.log.WarnContext(ctx, "signal policy change", "workflow", id, "err", err)
				continue
			}
			n++
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return n, nil
		}
	}
}

// dunningRoutes registers the Stripe webhook (public: it verifies Stripe's
// signature instead of an API key), the dunning policies and the overdue cohort.
func (s *Server) dunningRoutes(mux *http.ServeMux) {
	mux.Handle("POST /v1/webhooks/stripe", s.public(s.stripeWebhook))
	mux.Handle("GET /v1/plans/{id}/dunning-policy", s.authed(s.getDunningPolicy))
	mux.Handle("PUT /v1/plans/{id}/dunning-policy", s.authed(s.putDunningPolicy))
	mux.Handle("GET /v1/cohorts/overdue", s.authed(s.overdueCohort))
}
