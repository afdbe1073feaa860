package deploy

import (
	"testing"
	"time"
)

func TestDefaultScheduleFollowsSpec(t *testing.T) {
	// "Time since start" column of the spec's example schedule: the last
	// try happens 75:35:05 after the first.
	s := DefaultSchedule()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	for _, d := range s {
		total += d
	}
	if want := 75*time.Hour + 35*time.Minute + 5*time.Second; total != want || len(s) != 10 {
		t.Fatalf("%d tries over %s, want 10 over %s", len(s), total, want)
	}
}

func TestScheduleNext(t *testing.T) {
	s := DefaultSchedule()
	tests := []struct {
		failed int
		want   time.Duration
		ok     bool
	}{
		{0, 0, true}, // first try goes out immediately
		{1, 5 * time.Second, true},
		{2, 5 * time.Minute, true},
		{3, 30 * time.Minute, true},
		{9, 24 * time.Hour, true},
		{10, 0, false}, // ten tries failed: give up
		{11, 0, false},
		{-1, 0, false},
	}
	for _, tt := range tests {
		got, ok := s.Next(tt.failed)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Next(%d) = %s, %v; want %s, %v", tt.failed, got, ok, tt.want, tt.ok)
		}
	}
}

func TestScheduleValidate(t *testing.T) {
	tests := []struct {
		name  string
		s     Schedule
		valid bool
	}{
		{"five tries", Schedule{0, time.Second, time.Second, time.Second, time.Second}, true},
		{"four tries", Schedule{0, time.Second, time.Second, time.Second}, false},
		{"empty", nil, false},
		{"negative delay", Schedule{0, time.Second, -time.Second, time.Second, time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.s.Validate(); (err == nil) != tt.valid {
				t.Fatalf("Validate = %v, want valid=%v", err, tt.valid)
			}
		})
	}
}
