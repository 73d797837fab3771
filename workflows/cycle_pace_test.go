package workflows

import (
	"testing"
	"time"
)

func TestNextInterval(t *testing.T) {
	tests := []struct {
		name        string
		prev        time.Duration
		moved, near bool
		want        time.Duration
	}{
		{"near and moving", time.Hour, true, true, MinCheckInterval},
		{"far and moving doubles", 4 * time.Minute, true, false, 8 * time.Minute},
		{"far and moving stops at the ceiling", 45 * time.Minute, true, false, MaxCheckInterval},
		{"moving again after an idle spell", 16 * time.Hour, true, false, 2 * time.Minute},
		{"idle doubles past the ceiling", time.Hour, false, false, 2 * time.Hour},
		{"idle stops at a day", 20 * time.Hour, false, false, IdleCheckInterval},
		{"near but idle is idle", 2 * time.Hour, false, true, 4 * time.Hour},
		{"zero starts at the minimum", 0, true, false, 2 * MinCheckInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextInterval(tt.prev, tt.moved, tt.near); got != tt.want {
				t.Errorf("nextInterval(%v, moved %v, near %v) = %v, want %v", tt.prev, tt.moved, tt.near, got, tt.want)
			}
		})
	}
}

func TestApproaching(t *testing.T) {
	tests := []struct {
		name    string
		target  watchTarget
		elapsed time.Duration
		want    bool
	}{
		{"far and slow", watchTarget{value: dec("100"), prev: dec("90"), level: dec("1000")}, time.Hour, false},
		{"within 10%", watchTarget{value: dec("900"), prev: dec("900"), level: dec("1000")}, time.Hour, true},
		{"just outside 10%", watchTarget{value: dec("899"), prev: dec("899"), level: dec("1000")}, time.Hour, false},
		{"fast: reaches it within the horizon", watchTarget{value: dec("500"), prev: dec("100"), level: dec("1000")}, time.Hour, true},
		{"first check has no pace", watchTarget{value: dec("500"), prev: dec("0"), level: dec("1000")}, 0, false},
		{"below alert near", watchTarget{value: dec("105"), level: dec("100"), below: true}, time.Hour, true},
		{"below alert far", watchTarget{value: dec("500"), level: dec("100"), below: true}, time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := approaching(tt.target, tt.elapsed, 2*time.Hour); got != tt.want {
				t.Errorf("approaching(%+v, %v, 2h) = %v, want %v", tt.target, tt.elapsed, got, tt.want)
			}
		})
	}
}
