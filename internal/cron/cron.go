// Package cron parses crontab schedules and says when one fires next. It
// is pure: text in, times out, so `gw check` validates schedules with the
// same code that runs them.
//
// The syntax is Vixie cron's five fields (minute hour day-of-month month
// day-of-week) with *, lists, ranges, steps and the names jan-dec and
// sun-sat, plus the @yearly/@annually, @monthly, @weekly, @daily/@midnight,
// @hourly and @reboot shorthands and @every DURATION. Times are local.
package cron

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is one parsed schedule.
type Schedule struct {
	min, hour, dom, month, dow uint64 // bit i set: value i matches
	// domStar, dowStar: the field began with "*". As in Vixie cron, when
	// both day fields are restricted a day matching either one fires;
	// otherwise both must match.
	domStar, dowStar bool
	every            time.Duration // @every: fixed interval from the last run
	reboot           bool          // @reboot: once when gw starts
}

// Reboot reports whether the schedule is @reboot: one run at start, no
// other.
func (s Schedule) Reboot() bool { return s.reboot }

// Every is @every's interval (0 for any other schedule).
func (s Schedule) Every() time.Duration { return s.every }

// field is one of the five fields: its name and bounds, and the names its
// values may have.
type field struct {
	name    string
	lo, hi  int
	names   []string // names[i] stands for lo+i
	sunday7 bool     // day of week: 7 is Sunday too
	dst     func(*Schedule) (*uint64, *bool)
}

var (
	months = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	days   = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
	fields = []field{
		{name: "minute", lo: 0, hi: 59, dst: func(s *Schedule) (*uint64, *bool) { return &s.min, nil }},
		{name: "hour", lo: 0, hi: 23, dst: func(s *Schedule) (*uint64, *bool) { return &s.hour, nil }},
		{name: "day of month", lo: 1, hi: 31, dst: func(s *Schedule) (*uint64, *bool) { return &s.dom, &s.domStar }},
		{name: "month", lo: 1, hi: 12, names: months, dst: func(s *Schedule) (*uint64, *bool) { return &s.month, nil }},
		{name: "day of week", lo: 0, hi: 6, names: days, sunday7: true, dst: func(s *Schedule) (*uint64, *bool) { return &s.dow, &s.dowStar }},
	}
	shorthands = map[string]string{
		"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
		"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
	}
)

// Parse parses a schedule. Errors name the field and the part of it that
// is wrong.
func Parse(spec string) (Schedule, error) {
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "@") {
		word, arg, _ := strings.Cut(spec, " ")
		word = strings.ToLower(word)
		switch {
		case word == "@reboot" && arg == "":
			return Schedule{reboot: true}, nil
		case word == "@every":
			d, err := time.ParseDuration(strings.TrimSpace(arg))
			if err != nil || d < time.Second {
				return Schedule{}, fmt.Errorf("@every wants a duration of at least 1s, like @every 5m, got %q", arg)
			}
			return Schedule{every: d}, nil
		case shorthands[word] != "" && arg == "":
			spec = shorthands[word]
		default:
			return Schedule{}, fmt.Errorf("unknown schedule %q: want five fields (minute hour day-of-month month day-of-week) "+
				"or one of @yearly, @monthly, @weekly, @daily, @hourly, @reboot, @every DURATION", spec)
		}
	}
	parts := strings.Fields(spec)
	if len(parts) != len(fields) {
		return Schedule{}, fmt.Errorf("want 5 fields (minute hour day-of-month month day-of-week), got %d in %q", len(parts), spec)
	}
	var s Schedule
	for i, f := range fields {
		bits, err := f.parse(parts[i])
		if err != nil {
			return Schedule{}, fmt.Errorf("%s field %q: %w", f.name, parts[i], err)
		}
		set, star := f.dst(&s)
		*set = bits
		if star != nil {
			*star = strings.HasPrefix(parts[i], "*")
		}
	}
	return s, nil
}

// parse reads one field: a comma-separated list of *, N, N-M, each with an
// optional /STEP.
func (f field) parse(text string) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(text, ",") {
		rng, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("step %q is not a whole number above 0", stepText)
			}
			step = n
		}
		lo, hi := f.lo, f.hi
		if f.sunday7 {
			hi = 7
		}
		switch {
		case rng == "*":
		case rng == "":
			return 0, fmt.Errorf("empty list item")
		default:
			a, b, isRange := strings.Cut(rng, "-")
			var err error
			if lo, err = f.value(a); err != nil {
				return 0, err
			}
			hi = lo
			if isRange {
				if hi, err = f.value(b); err != nil {
					return 0, err
				}
				if hi < lo {
					return 0, fmt.Errorf("range %s runs backwards", rng)
				}
			} else if hasStep {
				// "5/15" is "5-59/15", as in Vixie cron.
				hi = f.hi
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v)
		}
	}
	if f.sunday7 && bits&(1<<7) != 0 {
		bits = bits&^(1<<7) | 1
	}
	return bits, nil
}

// value reads one number or name of the field.
func (f field) value(s string) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.lo + i, nil
		}
	}
	n, err := strconv.Atoi(s)
	hi := f.hi
	if f.sunday7 {
		hi = 7
	}
	if err != nil {
		if f.names != nil {
			return 0, fmt.Errorf("%q is neither a number nor a name (%s-%s)", s, f.names[0], f.names[len(f.names)-1])
		}
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if n < f.lo || n > hi {
		return 0, fmt.Errorf("%d is out of range %d-%d", n, f.lo, hi)
	}
	return n, nil
}

// Next returns the first time after t at which s fires, in t's location;
// the zero time for @reboot, or for a schedule that never fires (February
// 30th) within five years.
func (s Schedule) Next(t time.Time) time.Time {
	switch {
	case s.reboot:
		return time.Time{}
	case s.every > 0:
		return t.Add(s.every)
	}
	loc := t.Location()
	t = t.Truncate(time.Minute).Add(time.Minute)
	end := t.AddDate(5, 0, 0)
	for t.Before(end) {
		y, mo, d := t.Date()
		switch {
		case s.month&(1<<uint(mo)) == 0:
			t = time.Date(y, mo+1, 1, 0, 0, 0, 0, loc)
		case !s.dayMatches(t):
			t = time.Date(y, mo, d+1, 0, 0, 0, 0, loc)
		case s.hour&(1<<uint(t.Hour())) == 0:
			// time.Date, not Truncate: a zone may be off the hour (+05:30).
			t = time.Date(y, mo, d, t.Hour()+1, 0, 0, 0, loc)
		case s.min&(1<<uint(t.Minute())) == 0:
			t = t.Add(time.Minute)
		default:
			return t
		}
	}
	return time.Time{}
}

// dayMatches applies Vixie cron's rule: with both day fields restricted,
// either may match; with one a "*", the other decides.
func (s Schedule) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<uint(t.Day())) != 0
	dow := s.dow&(1<<uint(t.Weekday())) != 0
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}
