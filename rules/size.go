package rules

import (
	"fmt"
	"math"
	"regexp"
	"strconv"

	"github.com/slipway-build/slipway/model"
)

// percentRE is a rule's size_warn_increase: digits, an optional
// fraction, and the percent sign that says what the number means.
var percentRE = regexp.MustCompile(`^([0-9]{1,6}(?:\.[0-9]{1,3})?)%$`)

// ParsePercent reads a percentage such as "20%" or "2.5%" as a number
// (20, 2.5); it must be above zero.
func ParsePercent(s string) (float64, error) {
	m := percentRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("want a percentage such as \"20%%\", got %q", s)
	}
	p, err := strconv.ParseFloat(m[1], 64)
	if err != nil || p <= 0 || math.IsInf(p, 0) {
		return 0, fmt.Errorf("want a percentage above 0%% such as \"20%%\", got %q", s)
	}
	return p, nil
}

// checkSizeWarn checks size_warn_increase: empty, or a percentage.
func checkSizeWarn(s string) error {
	if s == "" {
		return nil
	}
	_, err := ParsePercent(s)
	return err
}

// strictestSizeWarn is the lower of two size_warn_increase settings of
// rules that share one build, an unset one counting as none: the build
// warns when either rule would.
func strictestSizeWarn(a, b string) string {
	pa, errA := ParsePercent(a)
	pb, errB := ParsePercent(b)
	switch {
	case errA != nil:
		return b
	case errB != nil:
		return a
	case pb < pa:
		return b
	}
	return a
}

// SameRule reports whether two builds' rules are one rule when their
// images are compared: the same source and the same Dockerfile, context,
// target and platforms. Tags, arguments and the other settings may have
// been edited in between; the builds still make the same image's line.
func SameRule(a, b model.Rule) bool {
	a, b = withDefaults(a), withDefaults(b)
	return a.SourceType == b.SourceType && a.Source == b.Source && a.Dockerfile == b.Dockerfile &&
		a.Context == b.Context && a.Target == b.Target && a.Platforms == b.Platforms
}
