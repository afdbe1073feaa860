package deploy

import (
	"fmt"
	"time"
)

// MinTries is the fewest attempts a schedule may allow: fewer would give up
// on a receiver that is merely restarting.
const MinTries = 5

// Schedule lists the delay before each attempt: s[0] before the first,
// s[1] before the second after the first failed, and so on. Its length is
// the number of tries.
type Schedule []time.Duration

// DefaultSchedule is the example retry schedule from the Standard Webhooks
// spec: ten tries spanning about three days.
func DefaultSchedule() Schedule {
	return Schedule{
		0,
		5 * time.Second,
		5 * time.Minute,
		30 * time.Minute,
		2 * time.Hour,
		5 * time.Hour,
		10 * time.Hour,
		14 * time.Hour,
		20 * time.Hour,
		24 * time.Hour,
	}
}

// Next returns how long to wait before the next try once attempt tries have
// failed, and false when the schedule is used up.
func (s Schedule) Next(attempt int) (time.Duration, bool) {
	if attempt < 0 || attempt >= len(s) {
		return 0, false
	}
	return s[attempt], true
}

// Validate rejects schedules that allow too few tries or go back in time,
// such as a mistyped one from configuration.
func (s Schedule) Validate() error {
	if len(s) < MinTries {
		return fmt.Errorf("retry schedule: %d tries, need at least %d", len(s), MinTries)
	}
	for i, d := range s {
		if d < 0 {
			return fmt.Errorf("retry schedule: delay %d is negative (%s)", i+1, d)
		}
	}
	return nil
}
