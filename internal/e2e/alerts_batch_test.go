package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/billcycle/billcycle/workflows"
)

// TestAllCustomersAlertReachesRunningCycles creates an all-customers alert
// through the API and checks that the batch operation it starts delivers
// alerts-changed to every running customer workflow on the real server.
func TestAllCustomersAlertReachesRunningCycles(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	run := time.Now().UnixNano()
	meterSlug := fmt.Sprintf("calls_%d", run)
	if status := s.post(t, "/v1/meters", fmt.Sprintf(`{"slug":%q,"name":"Calls","event_name":"api.call","aggregation":"count","unit":"calls"}`, meterSlug)); status != 201 {
		t.Fatalf("create meter status = %d, want 201", status)
	}
	var ids []string
	for i := range 2 {
		id := fmt.Sprintf("batch-%d-%d", run, i)
		if status := s.post(t, "/v1/signups", fmt.Sprintf(`{"customer_id":%q,"email":"%s@example.test"}`, id, id)); status != 201 {
			t.Fatalf("signup %s status = %d, want 201", id, status)
		}
		wid := workflows.CustomerWorkflowID(id)
		ids = append(ids, wid)
		t.Cleanup(func() { _ = s.tc.TerminateWorkflow(context.Background(), wid, "", "test over") })
	}
	// The batch selects workflows through visibility, which lags a little behind starts.
	eventually(t, "new workflows visible", func() (bool, string) {
		n, err := s.tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: s.cfg.TemporalNamespace,
			Query: fmt.Sprintf("WorkflowId IN ('%s', '%s') AND ExecutionStatus = 'Running'", ids[0], ids[1])})
		if err != nil {
			return false, err.Error()
		}
		return n.Count == 2, fmt.Sprintf("%d visible", n.Count)
	})
	if status := s.post(t, "/v1/alerts", fmt.Sprintf(`{"meter":%q,"threshold":"1000","actions":["email_customer"]}`, meterSlug)); status != 201 {
		t.Fatalf("create all-customers alert status = %d, want 201", status)
	}
	for _, wid := range ids {
		eventually(t, wid+" received alerts-changed", func() (bool, string) {
			it := s.tc.GetWorkflowHistory(ctx, wid, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					return false, err.Error()
				}
				if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil && a.GetSignalName() == workflows.SignalAlertsChanged {
					return true, ""
				}
			}
			return false, "no alerts-changed signal in history"
		})
	}
}
