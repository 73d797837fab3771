package starter

import (
	"fmt"
	"net/http"
	"net/mail"
	"regexp"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/billcycle/billcycle/store"
	"github.com/billcycle/billcycle/workflows"
)

// idPattern bounds the ids API callers choose (customers, meters, plans): they
// appear in workflow ids and Stripe idempotency keys.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$`)

type signupRequest struct {
	CustomerID string            `json:"customer_id"`
	Email      string            `json:"email"`
	Name       string            `json:"name"`
	Plan       string            `json:"plan"`
	Metadata   map[string]string `json:"metadata"`
}

func (req signupRequest) validate() error {
	switch {
	case req.CustomerID == "":
		return Invalid("customer_id", "is required")
	case !idPattern.MatchString(req.CustomerID):
		return Invalid("customer_id", "must be 1-128 characters of letters, digits and _.:@- starting with a letter or digit")
	case req.Email == "":
		return Invalid("email", "is required")
	}
	if addr, err := mail.ParseAddress(req.Email); err != nil || addr.Address != req.Email {
		return Invalid("email", "must be a plain email address such as ada@example.com")
	}
	if len(req.Name) > 256 {
		return Invalid("name", "must be at most 256 characters")
	}
	if req.Plan != "" && !idPattern.MatchString(req.Plan) {
		return Invalid("plan", "must be a plan id of letters, digits and _.:@-")
	}
	if len(req.Metadata) > 50 {
		return Invalid("metadata", "holds at most 50 keys")
	}
	for k, v := range req.Metadata {
		if k == "" || len(k) > 40 {
			return Invalid("metadata", "keys must be 1-40 characters")
		}
		if len(v) > 500 {
			return Invalid("metadata."+k, "must be at most 500 characters")
		}
	}
	return nil
}

type signupResponse struct {
	Customer   store.Customer `json:"customer"`
	Created    bool           `json:"created"`
	WorkflowID string         `json:"workflow_id"`
	RunID      string         `json:"run_id"`
}

// signup creates the customer and starts its BillingCycle workflow. Repeating
// it is harmless: the customer row is kept as first stored and the running
// workflow is reused (conflict policy USE_EXISTING).
func (s *Server) signup(w http.ResponseWriter, r *http.Request) error {
	var req signupRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	cust, created, err := s.store.CreateCustomer(r.Context(), store.Customer{
		ID: req.CustomerID, Email: req.Email, Name: req.Name, Plan: req.Plan, Metadata: req.Metadata,
	})
	if err != nil {
		return err
	}
	run, err := s.startCustomer(r, cust)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, signupResponse{Customer: cust, Created: created, WorkflowID: run.GetID(), RunID: run.GetRunID()})
	return nil
}

// startCustomer starts (or finds) the customer's BillingCycle workflow.
func (s *Server) startCustomer(r *http.Request, c store.Customer) (client.WorkflowRun, error) {
	opts := client.StartWorkflowOptions{
		ID:                       workflows.CustomerWorkflowID(c.ID),
		TaskQueue:                s.cfg.TaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchCustomerID.ValueSet(c.ID),
			workflows.SearchPlan.ValueSet(c.Plan),
			workflows.SearchStatus.ValueSet(workflows.StatusOnboarding),
		),
		StaticSummary: fmt.Sprintf("Billing cycle of %s (%s)", c.ID, c.Email),
	}
	in := workflows.SignupInput{CustomerID: c.ID, Email: c.Email, Name: c.Name, Plan: c.Plan, Metadata: c.Metadata}
	run, err := s.temporal.ExecuteWorkflow(r.Context(), opts, workflows.BillingCycleName, in)
	if err != nil {
		return nil, fmt.Errorf("start workflow for customer %s: %w", c.ID, err)
	}
	return run, nil
}
