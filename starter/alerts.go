package starter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"go.temporal.io/api/batch/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/billcycle/billcycle/billing"
	"github.com/billcycle/billcycle/store"
	"github.com/billcycle/billcycle/workflows"
)

// noticeRoutes adds the alert, notice and access routes to mux.
func (s *Server) noticeRoutes(mux *http.ServeMux) {
	mux.Handle("POST /v1/alerts", s.authed(s.createAlert))
	mux.Handle("GET /v1/alerts", s.authed(s.listAlerts))
	mux.Handle("GET /v1/alerts/{id}", s.authed(s.getAlert))
	mux.Handle("POST /v1/alerts/{id}/archive", s.authed(s.archiveAlert))
	mux.Handle("GET /v1/notices", s.authed(s.listNotices))
	mux.Handle("GET /v1/customers/{id}/access", s.authed(s.customerAccess))
}

// alertRequest is the body of POST /v1/alerts. Numbers and durations are
// read raw so a malformed one is a 400 naming its field.
type alertRequest struct {
	Meter          string            `json:"meter"`
	CustomerID     string            `json:"customer_id"`
	CustomerFilter map[string]string `json:"customer_filter"`
	Threshold      json.RawMessage   `json:"threshold"`
	Direction      string            `json:"direction"`
	Window         string            `json:"window"`
	Cooldown       string            `json:"cooldown"`
	Actions        []string          `json:"actions"`
}

// alertResponse is an alert as the API shows it.
type alertResponse struct {
	billing.Alert
	// Workflow says whether the customer's running workflow was told about
	// the alert: "updated", "not_running", or empty for all-customers alerts
	// (workflows load those when they next read their alerts).
	Workflow string `json:"workflow,omitempty"`
}

// createAlert handles POST /v1/alerts.
func (s *Server) createAlert(w http.ResponseWriter, r *http.Request) error {
	var req alertRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	a, err := req.alert()
	if err != nil {
		return err
	}
	ctx := r.Context()
	if a.CustomerID != "" {
		if _, err := s.store.Customer(ctx, a.CustomerID); errors.Is(err, store.ErrNotFound) {
			return Invalid("customer_id", "no customer %q", a.CustomerID)
		} else if err != nil {
			return err
		}
	}
	known, checked, err := s.store.MeterKnown(ctx, a.Meter)
	if err != nil {
		return err
	}
	if checked && !known {
		return Invalid("meter", "no meter %q; create it first with POST /v1/meters", a.Meter)
	}
	if !checked {
		s.log.WarnContext(ctx, "alert meter not checked: this schema has no meters table yet; only its slug form was validated", "meter", a.Meter)
	}
	a, err = s.store.CreateAlert(ctx, a)
	switch {
	case errors.Is(err, store.ErrAlertLimit):
		who := "all customers"
		if a.CustomerID != "" {
			who = "customer " + a.CustomerID
		}
		return &Error{Status: http.StatusConflict, Code: "alert_limit", Field: "meter",
			Message: fmt.Sprintf("meter %q already has %d live alerts for %s; archive one first", req.Meter, billing.MaxAlertsPerMeter, who)}
	case errors.Is(err, store.ErrNotFound):
		return Invalid("customer_id", "no customer %q", req.CustomerID)
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusCreated, alertResponse{Alert: a, Workflow: s.tellWorkflow(r, a)})
	return nil
}

// alert turns the request into a validated alert with a new id and the
// defaults filled in (direction above; cooldown 24h on windowed alerts).
func (req alertRequest) alert() (billing.Alert, error) {
	a := billing.Alert{
		Meter:          strings.TrimSpace(req.Meter),
		CustomerID:     strings.TrimSpace(req.CustomerID),
		CustomerFilter: req.CustomerFilter,
		Direction:      billing.AlertDirection(req.Direction),
	}
	if a.Direction == "" {
		a.Direction = billing.Above
	}
	if len(req.Threshold) == 0 || string(req.Threshold) == "null" {
		return a, Invalid("threshold", "is required: a number such as 1000 or \"1000.5\"")
	}
	var err error
	if a.Threshold, err = decimal.NewFromString(strings.Trim(string(req.Threshold), `"`)); err != nil {
		return a, Invalid("threshold", "must be a decimal number, got %s", req.Threshold)
	}
	for _, d := range []struct {
		field, val string
		dst        *billing.Duration
	}{{"window", req.Window, &a.Window}, {"cooldown", req.Cooldown, &a.Cooldown}} {
		if d.val == "" {
			continue
		}
		v, err := time.ParseDuration(d.val)
		if err != nil {
			return a, Invalid(d.field, "must be a Go duration such as \"24h\" or \"90m\", got %q", d.val)
		}
		*d.dst = billing.Duration(v)
	}
	if a.Window > 0 && req.Cooldown == "" {
		a.Cooldown = billing.Duration(billing.DefaultAlertCooldown)
	}
	for _, act := range req.Actions {
		a.Actions = append(a.Actions, billing.AlertAction(act))
	}
	if err := a.Validate(); err != nil {
		var fe *billing.FieldError
		if errors.As(err, &fe) {
			return a, Invalid(fe.Field, "%s", fe.Message)
		}
		return a, Invalid("", "%v", err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	a.ID = "alert_" + hex.EncodeToString(b[:])
	return a, nil
}

// listAlerts handles GET /v1/alerts?customer_id=&meter=&include_archived=.
// customer_id lists the alerts created for that customer; without it every
// alert is listed, all-customers alerts included.
func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.AlertFilter{CustomerID: q.Get("customer_id"), Meter: q.Get("meter")}
	switch v := q.Get("include_archived"); v {
	case "", "false":
	case "true":
		f.IncludeArchived = true
	default:
		return Invalid("include_archived", "must be true or false, got %q", v)
	}
	alerts, err := s.store.Alerts(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": alerts})
	return nil
}

// getAlert handles GET /v1/alerts/{id}.
func (s *Server) getAlert(w http.ResponseWriter, r *http.Request) error {
	a, err := s.store.Alert(r.Context(), r.PathValue("id"))
	if err != nil {
		return found(err, "alert "+r.PathValue("id"))
	}
	writeJSON(w, http.StatusOK, alertResponse{Alert: a})
	return nil
}

// archiveAlert handles POST /v1/alerts/{id}/archive; archiving twice is
// harmless.
func (s *Server) archiveAlert(w http.ResponseWriter, r *http.Request) error {
	a, err := s.store.ArchiveAlert(r.Context(), r.PathValue("id"))
	if err != nil {
		return found(err, "alert "+r.PathValue("id"))
	}
	writeJSON(w, http.StatusOK, alertResponse{Alert: a, Workflow: s.tellWorkflow(r, a)})
	return nil
}

// alertUpdater is the part of the Temporal client that sends updates;
// client.Client has it.
type alertUpdater interface {
	UpdateWorkflow(ctx context.Context, options client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error)
}

// batchStarter is the part of the Temporal client that starts batch
// operations; client.Client has it.
type batchStarter interface {
	WorkflowService() workflowservice.WorkflowServiceClient
}

// tellWorkflow delivers an alert change to the workflows it concerns and
// says how it went; the alert is stored either way. A customer's own alert
// goes to that customer's running workflow with the upsert-alert update. An
// all-customers alert is announced to every running BillingCycle with the
// alerts-changed signal, sent by one server-side batch operation, so each
// reloads its alerts at once instead of at its next scheduled reload.
func (s *Server) tellWorkflow(r *http.Request, a billing.Alert) string {
	if a.CustomerID == "" {
		return s.announceAlertsChanged(r.Context(), a)
	}
	u, ok := s.temporal.(alertUpdater)
	if !ok {
		return ""
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	h, err := u.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflows.CustomerWorkflowID(a.CustomerID),
		UpdateName:   workflows.UpdateUpsertAlert,
		Args:         []any{a},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	var notFound *serviceerror.NotFound
	switch {
	case err == nil:
		return "updated"
	case errors.As(err, &notFound):
		return "not_running"
	default:
		s.log.WarnContext(ctx, "alert stored but the customer workflow was not updated", "alert", a.ID, "customer", a.CustomerID, "err", err)
		return "update_failed"
	}
}

// announceAlertsChanged signals alerts-changed to every running BillingCycle
// through a Temporal batch operation (rate-limited by the server; it runs on
// after this request returns). It answers "signalled_all" or "batch_failed".
func (s *Server) announceAlertsChanged(ctx context.Context, a billing.Alert) string {
	b, ok := s.temporal.(batchStarter)
	if !ok {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var nonce [6]byte
	_, _ = rand.Read(nonce[:])
	_, err := b.WorkflowService().StartBatchOperation(ctx, &workflowservice.StartBatchOperationRequest{
		Namespace:       s.cfg.TemporalNamespace,
		JobId:           "alerts-changed/" + a.ID + "/" + hex.EncodeToString(nonce[:]),
		Reason:          "all-customers alert " + a.ID + " changed",
		VisibilityQuery: fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", workflows.BillingCycleName),
		Operation: &workflowservice.StartBatchOperationRequest_SignalOperation{
			SignalOperation: &batch.BatchOperationSignal{Signal: workflows.SignalAlertsChanged, Identity: "billcycle-api"},
		},
	})
	if err != nil {
		s.log.WarnContext(ctx, "alert stored but running cycles were not told; they reload alerts within 24 h", "alert", a.ID, "err", err)
		return "batch_failed"
	}
	return "signalled_all"
}
