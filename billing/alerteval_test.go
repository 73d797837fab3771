package billing

import (
	"errors"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestFilterMatches(t *testing.T) {
	tests := []struct {
		name     string
		filter   map[string]string
		metadata map[string]string
		want     bool
	}{
		{"no filter", nil, map[string]string{"plan": "pro"}, true},
		{"equal", map[string]string{"plan": "pro"}, map[string]string{"plan": "pro"}, true},
		{"different", map[string]string{"plan": "pro"}, map[string]string{"plan": "free"}, false},
		{"missing key", map[string]string{"plan": "pro"}, nil, false},
		{"not enterprise, is pro", map[string]string{"plan": "!enterprise"}, map[string]string{"plan": "pro"}, true},
		{"not enterprise, is enterprise", map[string]string{"plan": "!enterprise"}, map[string]string{"plan": "enterprise"}, false},
		{"not enterprise, no plan", map[string]string{"plan": "!enterprise"}, nil, true},
		{"two keys, one fails", map[string]string{"plan": "pro", "region": "eu"}, map[string]string{"plan": "pro", "region": "us"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FilterMatches(tt.filter, tt.metadata); got != tt.want {
				t.Errorf("FilterMatches(%v, %v) = %v, want %v", tt.filter, tt.metadata, got, tt.want)
			}
		})
	}
}

func TestAlertApplies(t *testing.T) {
	md := map[string]string{"plan": "pro"}
	tests := []struct {
		name string
		a    Alert
		want bool
	}{
		{"own", Alert{CustomerID: "c1"}, true},
		{"someone else's", Alert{CustomerID: "c2"}, false},
		{"all customers", Alert{}, true},
		{"all customers, filter matches", Alert{CustomerFilter: map[string]string{"plan": "!enterprise"}}, true},
		{"all customers, filter fails", Alert{CustomerFilter: map[string]string{"plan": "enterprise"}}, false},
		{"archived", Alert{CustomerID: "c1", Archived: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AlertApplies(tt.a, "c1", md); got != tt.want {
				t.Errorf("AlertApplies(%+v, c1, %v) = %v, want %v", tt.a, md, got, tt.want)
			}
		})
	}
}

func TestAlertSpan(t *testing.T) {
	p := Period{Start: utc(2026, 11, 1, 0, 0), End: utc(2026, 12, 1, 0, 0)}
	now := utc(2026, 11, 20, 12, 0)
	created := utc(2026, 11, 10, 0, 0)
	day := Duration(24 * time.Hour)
	tests := []struct {
		name     string
		a        Alert
		from, to time.Time
	}{
		{"cycle above: whole period (baseline subtracts earlier usage)", Alert{Direction: Above, CreatedAt: created}, p.Start, p.End},
		{"cycle below: from creation", Alert{Direction: Below, CreatedAt: created}, created, p.End},
		{"cycle below created before the period", Alert{Direction: Below, CreatedAt: p.Start.Add(-time.Hour)}, p.Start, p.End},
		{"rolling: last window", Alert{Window: day, CreatedAt: created}, now.Add(-24 * time.Hour), now},
		{"rolling created within the window", Alert{Window: day, CreatedAt: now.Add(-time.Hour)}, now.Add(-time.Hour), now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, to := AlertSpan(tt.a, p, now)
			if !from.Equal(tt.from) || !to.Equal(tt.to) {
				t.Errorf("AlertSpan(%+v) = [%v, %v), want [%v, %v)", tt.a, from, to, tt.from, tt.to)
			}
		})
	}
}

func TestAlertDue(t *testing.T) {
	now := utc(2026, 11, 20, 12, 0)
	day := Duration(24 * time.Hour)
	tests := []struct {
		name string
		a    Alert
		v    string
		st   AlertState
		want bool
	}{
		{"above, not reached", Alert{Threshold: dec("100")}, "99.9", AlertState{}, false},
		{"above, reached exactly", Alert{Threshold: dec("100")}, "100", AlertState{}, true},
		{"above, fired this cycle", Alert{Threshold: dec("100")}, "500", AlertState{Fired: 1, LastFired: now.Add(-72 * time.Hour)}, false},
		{"fired in an earlier cycle only", Alert{Threshold: dec("100")}, "500", AlertState{LastFired: now.Add(-40 * 24 * time.Hour)}, true},
		{"below, above it", Alert{Threshold: dec("100"), Direction: Below}, "100", AlertState{}, false},
		{"below, under it", Alert{Threshold: dec("100"), Direction: Below}, "99", AlertState{}, true},
		{"rolling, within cool-down", Alert{Threshold: dec("100"), Direction: Below, Window: day}, "5", AlertState{Fired: 1, LastFired: now.Add(-23 * time.Hour)}, false},
		{"rolling, cool-down passed", Alert{Threshold: dec("100"), Direction: Below, Window: day}, "5", AlertState{Fired: 1, LastFired: now.Add(-24 * time.Hour)}, true},
		{"rolling, custom cool-down", Alert{Threshold: dec("100"), Window: day, Cooldown: Duration(time.Hour)}, "200", AlertState{Fired: 3, LastFired: now.Add(-time.Hour)}, true},
		{"rolling, fired last cycle within cool-down", Alert{Threshold: dec("100"), Window: day}, "200", AlertState{LastFired: now.Add(-time.Hour)}, false},
		{"archived", Alert{Threshold: dec("100"), Archived: true}, "500", AlertState{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AlertDue(tt.a, dec(tt.v), tt.st, now); got != tt.want {
				t.Errorf("AlertDue(%+v, %s, %+v) = %v, want %v", tt.a, tt.v, tt.st, got, tt.want)
			}
		})
	}
}

func TestAlertValueSubtractsBaseline(t *testing.T) {
	st := AlertState{Baseline: dec("700"), BaselineKnown: true}
	tests := []struct {
		a    Alert
		want string
	}{
		{Alert{Direction: Above}, "300"},
		{Alert{}, "300"},
		{Alert{Direction: Below}, "1000"},
		{Alert{Window: Duration(time.Hour)}, "1000"},
	}
	for _, tt := range tests {
		if got := AlertValue(tt.a, dec("1000"), st); !got.Equal(dec(tt.want)) {
			t.Errorf("AlertValue(%+v, 1000, baseline 700) = %v, want %s", tt.a, got, tt.want)
		}
	}
}

func TestEvaluateAlerts(t *testing.T) {
	now := utc(2026, 11, 20, 12, 0)
	alerts := []Alert{
		{ID: "a", Threshold: dec("10")},
		{ID: "b", Threshold: dec("10")},
		{ID: "c", Threshold: dec("10")},
		{ID: "d", Threshold: dec("10")},
	}
	states := map[string]AlertState{"b": {Fired: 1, LastFired: now}}
	values := map[string]decimal.Decimal{"a": dec("11"), "b": dec("11"), "c": dec("9")}
	got := EvaluateAlerts(alerts, states, values, now)
	if len(got) != 1 || got[0].Alert.ID != "a" || got[0].Seq != 1 || !got[0].Value.Equal(dec("11")) {
		t.Errorf("EvaluateAlerts() = %+v, want only a firing once with value 11", got)
	}
}

func TestValidateAlert(t *testing.T) {
	ok := Alert{ID: "a1", Meter: "requests", Threshold: dec("10"), Actions: []AlertAction{ActionEmail}}
	tests := []struct {
		name  string
		edit  func(*Alert)
		field string
	}{
		{"valid", func(*Alert) {}, ""},
		{"no id", func(a *Alert) { a.ID = "" }, "id"},
		{"no meter", func(a *Alert) { a.Meter = "" }, "meter"},
		{"negative threshold", func(a *Alert) { a.Threshold = dec("-1") }, "threshold"},
		{"bad direction", func(a *Alert) { a.Direction = "sideways" }, "direction"},
		{"no actions", func(a *Alert) { a.Actions = nil }, "actions"},
		{"unknown action", func(a *Alert) { a.Actions = []AlertAction{ActionEmail, "dance"} }, "actions[1]"},
		{"negative window", func(a *Alert) { a.Window = -1 }, "window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := ok
			tt.edit(&a)
			err := ValidateAlert(a)
			var fe *FieldError
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("ValidateAlert() = %v, want nil", err)
			case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
				t.Errorf("ValidateAlert() = %v, want a field error on %s", err, tt.field)
			}
		})
	}
}
