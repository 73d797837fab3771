package billing

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func utc(y int, m time.Month, d, h, mi int) time.Time {
	return time.Date(y, m, d, h, mi, 0, 0, time.UTC)
}

func TestPeriodAt(t *testing.T) {
	monthly := Interval{Month, 1}
	est := time.FixedZone("EST", -5*3600)
	tests := []struct {
		name               string
		anchor             time.Time
		iv                 Interval
		at                 time.Time
		wantStart, wantEnd time.Time
	}{
		{"first period", utc(2024, 1, 31, 0, 0), monthly, utc(2024, 2, 10, 0, 0), utc(2024, 1, 31, 0, 0), utc(2024, 2, 29, 0, 0)},
		{"31st falls on leap Feb 29", utc(2024, 1, 31, 0, 0), monthly, utc(2024, 2, 29, 0, 0), utc(2024, 2, 29, 0, 0), utc(2024, 3, 31, 0, 0)},
		{"31st returns in March", utc(2024, 1, 31, 0, 0), monthly, utc(2024, 3, 31, 12, 0), utc(2024, 3, 31, 0, 0), utc(2024, 4, 30, 0, 0)},
		{"31st falls on Apr 30", utc(2024, 1, 31, 0, 0), monthly, utc(2024, 5, 1, 0, 0), utc(2024, 4, 30, 0, 0), utc(2024, 5, 31, 0, 0)},
		{"31st falls on Feb 28 in a common year", utc(2023, 1, 31, 0, 0), monthly, utc(2023, 3, 1, 0, 0), utc(2023, 2, 28, 0, 0), utc(2023, 3, 31, 0, 0)},
		{"30th falls on Feb 28", utc(2025, 1, 30, 0, 0), monthly, utc(2025, 3, 1, 0, 0), utc(2025, 2, 28, 0, 0), utc(2025, 3, 30, 0, 0)},
		{"29th in common year", utc(2024, 2, 29, 0, 0), monthly, utc(2025, 3, 1, 0, 0), utc(2025, 2, 28, 0, 0), utc(2025, 3, 29, 0, 0)},
		{"29th back in leap year", utc(2024, 2, 29, 0, 0), monthly, utc(2028, 2, 29, 0, 0), utc(2028, 2, 29, 0, 0), utc(2028, 3, 29, 0, 0)},
		{"Dec 31 to Jan 31 across year end", utc(2024, 12, 31, 0, 0), monthly, utc(2025, 1, 15, 0, 0), utc(2024, 12, 31, 0, 0), utc(2025, 1, 31, 0, 0)},
		{"yearly from Feb 29", utc(2024, 2, 29, 0, 0), Interval{Month, 12}, utc(2025, 6, 1, 0, 0), utc(2025, 2, 28, 0, 0), utc(2026, 2, 28, 0, 0)},
		{"yearly back on Feb 29", utc(2024, 2, 29, 0, 0), Interval{Month, 12}, utc(2028, 2, 29, 0, 0), utc(2028, 2, 29, 0, 0), utc(2029, 2, 28, 0, 0)},
		{"quarterly from Nov 30", utc(2023, 11, 30, 0, 0), Interval{Month, 3}, utc(2024, 3, 1, 0, 0), utc(2024, 2, 29, 0, 0), utc(2024, 5, 30, 0, 0)},
		{"one tick before the boundary", utc(2024, 1, 31, 15, 30), monthly, utc(2024, 2, 29, 15, 29), utc(2024, 1, 31, 15, 30), utc(2024, 2, 29, 15, 30)},
		{"exactly at the boundary", utc(2024, 1, 31, 15, 30), monthly, utc(2024, 2, 29, 15, 30), utc(2024, 2, 29, 15, 30), utc(2024, 3, 31, 15, 30)},
		{"before the anchor", utc(2024, 3, 31, 0, 0), monthly, utc(2024, 3, 1, 0, 0), utc(2024, 2, 29, 0, 0), utc(2024, 3, 31, 0, 0)},
		{"non-UTC input is read in UTC", time.Date(2024, 1, 31, 20, 0, 0, 0, est), monthly, utc(2024, 2, 15, 0, 0), utc(2024, 2, 1, 1, 0), utc(2024, 3, 1, 1, 0)},
		{"weekly", utc(2024, 1, 1, 0, 0), Interval{Day, 7}, utc(2024, 1, 15, 0, 0), utc(2024, 1, 15, 0, 0), utc(2024, 1, 22, 0, 0)},
		{"weekly one minute before", utc(2024, 1, 1, 0, 0), Interval{Day, 7}, utc(2024, 1, 14, 23, 59), utc(2024, 1, 8, 0, 0), utc(2024, 1, 15, 0, 0)},
		{"days across leap day", utc(2024, 2, 27, 0, 0), Interval{Day, 2}, utc(2024, 2, 29, 6, 0), utc(2024, 2, 29, 0, 0), utc(2024, 3, 2, 0, 0)},
		{"days before the anchor", utc(2024, 1, 1, 0, 0), Interval{Day, 7}, utc(2023, 12, 31, 0, 0), utc(2023, 12, 25, 0, 0), utc(2024, 1, 1, 0, 0)},
		{"30 days across Feb", utc(2023, 1, 31, 0, 0), Interval{Day, 30}, utc(2023, 3, 2, 0, 0), utc(2023, 3, 2, 0, 0), utc(2023, 4, 1, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PeriodAt(tt.anchor, tt.iv, tt.at)
			if !got.Start.Equal(tt.wantStart) || !got.End.Equal(tt.wantEnd) {
				t.Errorf("PeriodAt(%v, %v, %v) = [%v, %v), want [%v, %v)",
					tt.anchor, tt.iv, tt.at, got.Start, got.End, tt.wantStart, tt.wantEnd)
			}
			if got.Start.Location() != time.UTC || got.End.Location() != time.UTC {
				t.Errorf("PeriodAt(%v) returned times in %v, want UTC", tt.at, got.Start.Location())
			}
		})
	}
}

// TestPeriodAtSequence walks a year of periods from a Jan 31 anchor.
func TestPeriodAtSequence(t *testing.T) {
	anchor := utc(2024, 1, 31, 0, 0)
	wantDays := []int{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 31}
	p := PeriodAt(anchor, Interval{Month, 1}, anchor)
	for i, want := range wantDays {
		if p.Start.Day() != want {
			t.Errorf("period %d starts %v, want day %d", i, p.Start, want)
		}
		p = PeriodAt(anchor, Interval{Month, 1}, p.End)
	}
}

// TestPeriodAtProperties checks with random anchors and times that the
// period contains the time and that periods tile the timeline.
func TestPeriodAtProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	base := utc(2020, 1, 1, 0, 0)
	for i := range 5000 {
		anchor := base.Add(time.Duration(r.Int64N(int64(6 * 365 * 24 * time.Hour)))).Truncate(time.Second)
		at := base.Add(time.Duration(r.Int64N(int64(12*365*24*time.Hour))) - 3*365*24*time.Hour)
		iv := Interval{Month, 1 + r.IntN(12)}
		if i%2 == 0 {
			iv = Interval{Day, 1 + r.IntN(90)}
		}
		p := PeriodAt(anchor, iv, at)
		if !p.Contains(at) {
			t.Fatalf("PeriodAt(%v, %v, %v) = [%v, %v), which does not contain the time", anchor, iv, at, p.Start, p.End)
		}
		next := PeriodAt(anchor, iv, p.End)
		if !next.Start.Equal(p.End) {
			t.Fatalf("PeriodAt(%v, %v, %v) = [%v, %v), next period starts %v, want %v", anchor, iv, at, p.Start, p.End, next.Start, p.End)
		}
		if iv.Unit == Month && p.Start.Day() != anchor.Day() && p.Start.Day() != daysIn(p.Start.Year(), p.Start.Month()) {
			t.Fatalf("PeriodAt(%v, %v, %v) starts %v: neither the anchor day nor the month's last day", anchor, iv, at, p.Start)
		}
	}
}

func TestSubscriptionValidate(t *testing.T) {
	valid := func() Subscription {
		return Subscription{CustomerID: "c1", PlanID: "pro", Anchor: utc(2024, 1, 31, 0, 0), Status: Active, Currency: "usd",
			TaxRate: dec("8.25"), Discounts: []Discount{{Kind: PercentOff, PercentOff: dec("10")}}}
	}
	tests := []struct {
		name      string
		mutate    func(*Subscription)
		wantField string
	}{
		{"valid", func(*Subscription) {}, ""},
		{"missing customer", func(s *Subscription) { s.CustomerID = "" }, "customer_id"},
		{"missing anchor", func(s *Subscription) { s.Anchor = time.Time{} }, "anchor"},
		{"bad status", func(s *Subscription) { s.Status = "paused" }, "status"},
		{"bad currency", func(s *Subscription) { s.Currency = "zzz" }, "currency"},
		{"negative credit", func(s *Subscription) { s.CreditBalance = -1 }, "credit_balance"},
		{"tax above 100", func(s *Subscription) { s.TaxRate = dec("101") }, "tax_rate"},
		{"percent above 100", func(s *Subscription) { s.Discounts[0].PercentOff = dec("150") }, "discounts[0].percent_off"},
		{"negative amount off", func(s *Subscription) { s.Discounts[0] = Discount{Kind: AmountOff, AmountOff: -5} }, "discounts[0].amount_off"},
		{"unknown discount kind", func(s *Subscription) { s.Discounts[0].Kind = "bogo" }, "discounts[0].kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.mutate(&s)
			err := s.Validate()
			var fe *FieldError
			switch {
			case tt.wantField == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantField != "" && !errors.As(err, &fe):
				t.Errorf("Validate() = %v, want a *FieldError for %s", err, tt.wantField)
			case tt.wantField != "" && fe.Field != tt.wantField:
				t.Errorf("Validate() field = %q (%v), want %q", fe.Field, err, tt.wantField)
			}
		})
	}
}

func TestInTrial(t *testing.T) {
	end := utc(2024, 2, 14, 0, 0)
	s := Subscription{TrialEnd: &end}
	if !s.InTrial(utc(2024, 2, 13, 23, 59)) || s.InTrial(end) || (Subscription{}).InTrial(end) {
		t.Errorf("InTrial: want true before %v and false at it or without a trial", end)
	}
}
