package workflows

import (
	"testing"
	"time"

	"github.com/billcycle/billcycle/billing"
)

// TestAlertsChangedReloadsAllCustomerAlertsAtOnce creates an all-customers
// alert mid-cycle, as POST /v1/alerts does (store it, then signal every
// running cycle), and expects it to act within the hour instead of at the
// next scheduled reload.
func TestAlertsChangedReloadsAllCustomerAlertsAtOnce(t *testing.T) {
	for _, signal := range []bool{true, false} {
		name := map[bool]string{true: "signalled", false: "not signalled"}[signal]
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, activeSub("api"), billing.Thresholds{})
			w.use(dayAt(2, 0), "requests", "500") // before the alert: does not count; this check reloads alerts
			created := dayAt(2, 1)                // an hour after that reload, well inside the 6 h refresh
			w.at(created, func() {
				al := alertOn("all-100", "100", billing.ActionEmail)
				al.CustomerID, al.CreatedAt = "", created
				w.mu.Lock()
				w.alerts = append(w.alerts, al)
				w.mu.Unlock()
				if signal {
					w.env.SignalWorkflow(SignalAlertsChanged, nil)
				}
			})
			w.use(created.Add(10*time.Minute), "requests", "150")
			var within []string
			w.at(created.Add(time.Hour), func() { within = w.noticeKeys("usage_alert") })
			w.run(signup())
			if signal && len(within) != 1 {
				t.Errorf("alert notices an hour after alerts-changed = %v, want one", within)
			}
			if !signal && len(within) != 0 {
				t.Errorf("alert notices an hour after an unsignalled change = %v, want none yet (the test must tell the two apart)", within)
			}
			if got := w.noticeKeys("usage_alert"); len(got) != 1 {
				t.Errorf("alert notices this cycle = %v, want exactly one", got)
			}
		})
	}
}
