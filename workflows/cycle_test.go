package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/billcycle/billcycle/activities"
)

func TestBillingCycleOnboardsThenCancels(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	env.OnActivity(a.EnsureStripeCustomer, mock.Anything, activities.CustomerRef{CustomerID: "acme", Email: "b@acme.test", Name: "Acme"}).
		Return("cus_123", nil).Once()
	env.RegisterDelayedCallback(func() {
		res, err := env.QueryWorkflow(QueryStatus)
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		var st CycleStatus
		_ = res.Get(&st)
		if st.Status != StatusActive || st.StripeCustomerID != "cus_123" {
			t.Errorf("status before cancel = %+v, want active with cus_123", st)
		}
		env.SignalWorkflow(SignalCancel, nil)
	}, 48*time.Hour)
	env.ExecuteWorkflow(BillingCycle, SignupInput{CustomerID: "acme", Email: "b@acme.test", Name: "Acme", Plan: "pro"})
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete after cancel")
	}
	var st CycleStatus
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	if st.Status != StatusCanceled {
		t.Errorf("final status = %q, want canceled", st.Status)
	}
	env.AssertExpectations(t)
}

func TestBillingCycleRetriesStripeUntilItAnswers(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	calls := 0
	env.OnActivity(a.EnsureStripeCustomer, mock.Anything, mock.Anything).Return(func(context.Context, activities.CustomerRef) (string, error) {
		calls++
		if calls < 3 {
			return "", errors.New("stripe: 503")
		}
		return "cus_9", nil
	})
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalCancel, nil) }, time.Hour)
	env.ExecuteWorkflow(BillingCycle, SignupInput{CustomerID: "c9", Email: "c9@x.test"})
	var st CycleStatus
	if err := env.GetWorkflowResult(&st); err != nil {
		t.Fatal(err)
	}
	if calls != 3 || st.StripeCustomerID != "cus_9" {
		t.Errorf("after two failures: calls = %d, stripe id %q; want 3 calls and cus_9", calls, st.StripeCustomerID)
	}
}
