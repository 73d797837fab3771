package workflows

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"

	"github.com/billcycle/billcycle/billing"
)

// ingest records qty requests at t the way the ingest path does: it nudges
// the workflow only when the period total reaches a stored watch level, and
// clears that level.
func (w *world) ingest(t time.Time, qty string) {
	w.at(t, func() {
		w.mu.Lock()
		w.events = append(w.events, event{at: t, meter: "requests", qty: dec(qty)})
		nudge := false
		if n := len(w.watch); n > 0 {
			last := &w.watch[n-1]
			total := dec("0")
			for _, e := range w.events {
				if !e.at.Before(last.From) {
					total = total.Add(e.qty)
				}
			}
			if lvl, ok := last.Levels["requests"]; ok && total.GreaterThanOrEqual(lvl) {
				delete(last.Levels, "requests")
				nudge = true
			}
		}
		w.mu.Unlock()
		if nudge {
			w.nudges++
			w.env.SignalWorkflow(SignalUsageCrossed, UsageCrossed{Meter: "requests"})
		}
	})
}

// cost counts what one run puts in its history.
type cost struct {
	activities, timersStarted, timersFired, timersCanceled, signals int
}

// events estimates the run's history length: 3 events to start, 3 per
// activity plus the workflow task that handles its result (3), 1 per timer
// started or canceled, 1 per timer fired or signal plus the workflow task
// that handles it (3), and an upsert of the search attributes per check.
func (c cost) events(checks int) int {
	return 3 + 6*c.activities + c.timersStarted + c.timersCanceled + 4*(c.timersFired+c.signals) + checks
}

func measure(w *world) *cost {
	c := &cost{}
	w.env.SetOnActivityStartedListener(func(*activity.Info, context.Context, converter.EncodedValues) { c.activities++ })
	w.env.SetOnTimerScheduledListener(func(string, time.Duration) { c.timersStarted++ })
	w.env.SetOnTimerFiredListener(func(string) { c.timersFired++ })
	w.env.SetOnTimerCanceledListener(func(string) { c.timersCanceled++ })
	return c
}

// TestCostOfOneCycle measures a 30-day cycle with no usage and with steady
// usage (100 requests every hour, far from every threshold and alert)
// and checks the targets: under 100 activity runs for an idle month, every
// run under 4,096 history events.
func TestCostOfOneCycle(t *testing.T) {
	tests := []struct {
		name          string
		steady        bool
		maxActivities int
	}{
		{"idle", false, 100},
		{"steady usage", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, activeSub("api"), billing.Thresholds{AmountGTE: 100_000_000})
			w.alerts = []billing.Alert{alertOn("big", "10000000", billing.ActionEmail)}
			c := measure(w)
			if tt.steady {
				for at := periodStart.Add(2 * time.Hour); at.Before(periodStart.AddDate(0, 1, 0)); at = at.Add(time.Hour) {
					w.ingest(at, "100")
				}
			}
			var checks int
			w.env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, _ error) {
				if info.ActivityType.Name == "ReadUsage" {
					checks++
				}
			})
			next, _ := w.run(signup())
			if next == nil {
				t.Fatal("workflow ended, want continue-as-new at period end")
			}
			c.signals = w.nudges
			events := c.events(checks)
			t.Logf("%s 30-day cycle: %d activity runs (%v), %d checks, %d timers started, %d fired, %d canceled, %d nudges; ≈%d history events (continue-as-new every %d)",
				tt.name, c.activities, w.activityRun, checks, c.timersStarted, c.timersFired, c.timersCanceled, c.signals, events, HistoryBudget)
			if tt.maxActivities > 0 && c.activities >= tt.maxActivities {
				t.Errorf("idle month ran %d activities, want under %d", c.activities, tt.maxActivities)
			}
			if runs := events/HistoryBudget + 1; events/runs >= 4096 {
				t.Errorf("≈%d events in %d runs, want every run under 4,096", events, runs)
			}
		})
	}
}
