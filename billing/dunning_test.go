package billing

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestDefaultPolicyIsValidAndEscalates(t *testing.T) {
	p := DefaultPolicy()
	if err := p.Validate(); err != nil {
		t.Fatalf("DefaultPolicy().Validate() = %v, want nil", err)
	}
	want := []struct {
		day    int
		action DunningAction
	}{
		{0, ActionEmailNotice}, {3, ActionEmailNotice}, {7, ActionEmailNotice}, {7, ActionNotifyAccountManager},
		{14, ActionSuspendAccess}, {30, ActionCancelSubscription},
	}
	if len(p.Steps) != len(want) {
		t.Fatalf("DefaultPolicy() has %d steps, want %d", len(p.Steps), len(want))
	}
	for i, w := range want {
		s := p.Steps[i]
		if time.Duration(s.After) != time.Duration(w.day)*DunningDay || s.Action != w.action {
			t.Errorf("DefaultPolicy().Steps[%d] = %s %s, want day %d %s", i, time.Duration(s.After), s.Action, w.day, w.action)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	step := func(after time.Duration, action DunningAction, template string) Step {
		return Step{After: Duration(after), Action: action, Template: template}
	}
	tests := []struct {
		name      string
		policy    Policy
		wantField string // "" means valid
	}{
		{"one reminder", Policy{Steps: []Step{step(0, ActionEmailNotice, "r")}}, ""},
		{"equal times keep listed order", Policy{Steps: []Step{step(DunningDay, ActionEmailNotice, "r"), step(DunningDay, ActionSuspendAccess, "")}}, ""},
		{"seconds apart", Policy{ID: "fast", Steps: []Step{step(0, ActionEmailNotice, "a"), step(2*time.Second, ActionEmailNotice, "b")}}, ""},
		{"no steps", Policy{}, "steps"},
		{"too many steps", Policy{Steps: make([]Step, MaxDunningSteps+1)}, "steps"},
		{"bad id", Policy{ID: "a b", Steps: []Step{step(0, ActionEmailNotice, "r")}}, "id"},
		{"out of order", Policy{Steps: []Step{
			step(0, ActionEmailNotice, "r"), step(7*DunningDay, ActionEmailNotice, "w"), step(3*DunningDay, ActionSuspendAccess, ""),
		}}, "steps[2].after"},
		{"negative after", Policy{Steps: []Step{step(-time.Hour, ActionEmailNotice, "r")}}, "steps[0].after"},
		{"after beyond a year", Policy{Steps: []Step{step(400*DunningDay, ActionEmailNotice, "r")}}, "steps[0].after"},
		{"unknown action", Policy{Steps: []Step{step(0, ActionEmailNotice, "r"), step(DunningDay, "sms", "")}}, "steps[1].action"},
		{"missing action", Policy{Steps: []Step{step(0, "", "")}}, "steps[0].action"},
		{"email without template", Policy{Steps: []Step{step(0, ActionEmailNotice, "")}}, "steps[0].template"},
		{"bad template", Policy{Steps: []Step{step(0, ActionSuspendAccess, "x y")}}, "steps[0].template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Errorf("Validate() = %v, want a *FieldError for %s", err, tt.wantField)
			}
		})
	}
}

func TestPolicyJSONRoundTrip(t *testing.T) {
	in := `{"id":"p","steps":[{"after":"72h0m0s","action":"email_notice","template":"r"},{"after":"336h0m0s","action":"suspend_access"}]}`
	var p Policy
	if err := json.Unmarshal([]byte(in), &p); err != nil {
		t.Fatal(err)
	}
	if time.Duration(p.Steps[1].After) != 14*DunningDay || p.Steps[1].Action != ActionSuspendAccess {
		t.Errorf("decoded step 1 = %+v, want 14 days suspend_access", p.Steps[1])
	}
	out, _ := json.Marshal(p)
	if string(out) != in {
		t.Errorf("json.Marshal(%+v) = %s, want %s", p, out, in)
	}
}
