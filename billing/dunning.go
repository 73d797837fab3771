package billing

import (
	"regexp"
	"time"
)

// DunningAction is what one step of a dunning policy does.
type DunningAction string

// The actions a dunning step may take.
const (
	// ActionEmailNotice emails the customer the step's template.
	ActionEmailNotice DunningAction = "email_notice"
	// ActionNotifyAccountManager tells the customer's account manager (Slack
	// or email) that the invoice is overdue.
	ActionNotifyAccountManager DunningAction = "notify_account_manager"
	// ActionSuspendAccess revokes the customer's API access until payment.
	ActionSuspendAccess DunningAction = "suspend_access"
	// ActionCancelSubscription cancels the customer's subscription.
	ActionCancelSubscription DunningAction = "cancel_subscription"
	// ActionMarkUncollectible marks the invoice uncollectible (bad debt) in Stripe.
	ActionMarkUncollectible DunningAction = "mark_uncollectible"
)

// DunningActions lists every known dunning action.
var DunningActions = []DunningAction{
	ActionEmailNotice, ActionNotifyAccountManager, ActionSuspendAccess, ActionCancelSubscription, ActionMarkUncollectible,
}

// Known reports whether a is one of the dunning actions.
func (a DunningAction) Known() bool {
	for _, k := range DunningActions {
		if a == k {
			return true
		}
	}
	return false
}

// Step is one step of a dunning policy: After the start of dunning (the
// failed payment or the due date; time spent paused by a dispute does not
// count), take Action.
type Step struct {
	After  Duration      `json:"after"`
	Action DunningAction `json:"action"`
	// Template names the notice template. It is required for email_notice;
	// on the other actions it is optional and names a notice sent to the
	// customer along with the action (for example "access suspended").
	Template string `json:"template,omitempty"`
}

// Policy is a dunning policy: the escalating steps taken while an invoice
// stays unpaid.
type Policy struct {
	ID    string `json:"id"`
	Steps []Step `json:"steps"`
}

// Limits of a dunning policy.
const (
	// MaxDunningSteps bounds the steps of one policy.
	MaxDunningSteps = 20
	// MaxDunningAfter bounds how late a step may come.
	MaxDunningAfter = 366 * 24 * time.Hour
)

// DunningDay is 24 hours, the unit dunning policies are usually written in.
const DunningDay = 24 * time.Hour

// The notice templates of the default policy.
const (
	TemplateDunningReminder       = "dunning_reminder"
	TemplateDunningSecondReminder = "dunning_second_reminder"
	TemplateDunningFinalWarning   = "dunning_final_warning"
	TemplateDunningSuspended      = "dunning_access_suspended"
	TemplateDunningCanceled       = "dunning_subscription_canceled"
	// TemplateDunningRestored is the "thank you, access restored" notice sent
	// when an invoice is paid after dunning suspended access.
	TemplateDunningRestored = "dunning_access_restored"
)

// DefaultPolicy is the policy of plans that set none: a reminder on day 0,
// a second reminder on day 3, a final warning with the account manager told
// on day 7, access suspended on day 14 and the subscription canceled on day 30.
func DefaultPolicy() Policy {
	return Policy{ID: "default", Steps: []Step{
		{After: 0, Action: ActionEmailNotice, Template: TemplateDunningReminder},
		{After: Duration(3 * DunningDay), Action: ActionEmailNotice, Template: TemplateDunningSecondReminder},
		{After: Duration(7 * DunningDay), Action: ActionEmailNotice, Template: TemplateDunningFinalWarning},
		{After: Duration(7 * DunningDay), Action: ActionNotifyAccountManager},
		{After: Duration(14 * DunningDay), Action: ActionSuspendAccess, Template: TemplateDunningSuspended},
		{After: Duration(30 * DunningDay), Action: ActionCancelSubscription, Template: TemplateDunningCanceled},
	}}
}

var templatePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$`)

// Validate returns a *FieldError naming the first invalid field (for example
// "steps[2].after"), or nil. Steps must come in time order (equal times run in
// the order listed), take known actions, and email notices need a template.
func (p Policy) Validate() error {
	if err := p.validate(); err != nil {
		return err
	}
	return nil
}

func (p Policy) validate() *FieldError {
	if p.ID != "" && !templatePattern.MatchString(p.ID) {
		return fieldErr("id", "must be 1-100 characters of letters, digits and _.:- starting with a letter or digit")
	}
	switch {
	case len(p.Steps) == 0:
		return fieldErr("steps", "must hold at least one step")
	case len(p.Steps) > MaxDunningSteps:
		return fieldErr("steps", "holds at most %d steps, got %d", MaxDunningSteps, len(p.Steps))
	}
	for i, s := range p.Steps {
		if err := under(indexed("steps", i), s.validate()); err != nil {
			return err
		}
		if i > 0 && s.After < p.Steps[i-1].After {
			return fieldErr(indexed("steps", i)+".after", "must not come before step %d (%s), steps are in time order",
				i-1, time.Duration(p.Steps[i-1].After))
		}
	}
	return nil
}

func (s Step) validate() *FieldError {
	switch {
	case s.After < 0:
		return fieldErr("after", "must not be negative")
	case time.Duration(s.After) > MaxDunningAfter:
		return fieldErr("after", "must be at most %s", MaxDunningAfter)
	case s.Action == "":
		return fieldErr("action", "is required")
	case !s.Action.Known():
		return fieldErr("action", "unknown action %q; want one of %v", s.Action, DunningActions)
	case s.Action == ActionEmailNotice && s.Template == "":
		return fieldErr("template", "is required for %s", ActionEmailNotice)
	case s.Template != "" && !templatePattern.MatchString(s.Template):
		return fieldErr("template", "must be 1-100 characters of letters, digits and _.:- starting with a letter or digit")
	}
	return nil
}
