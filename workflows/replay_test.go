package workflows

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplayHistories replays every recorded history in testdata/ against
// the current workflow code. A change that alters the commands a recorded
// run produced (a new timer or activity, a reordering) fails here: make such
// changes behind workflow.GetVersion, and keep these files replaying.
func TestReplayHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata/")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(BillingCycle, workflow.RegisterOptions{Name: BillingCycleName})
			r.RegisterWorkflowWithOptions(Dunning, workflow.RegisterOptions{Name: DunningName})
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Errorf("replay %s: %v", f, err)
			}
		})
	}
}
