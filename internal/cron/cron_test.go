package cron

import (
	"strings"
	"testing"
	"time"
)

// at is a UTC time: the cases are free of daylight saving changes.
func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestNext(t *testing.T) {
	for i, tc := range []struct {
		spec, from, want string
	}{
		{"* * * * *", "2026-03-10 12:00", "2026-03-10 12:01"},
		{"*/15 * * * *", "2026-03-10 12:01", "2026-03-10 12:15"},
		{"*/15 * * * *", "2026-03-10 12:59", "2026-03-10 13:00"},
		{"5/20 * * * *", "2026-03-10 12:26", "2026-03-10 12:45"},
		{"0 3 * * *", "2026-03-10 03:00", "2026-03-11 03:00"},
		{"30 9-17/4 * * *", "2026-03-10 10:00", "2026-03-10 13:30"},
		{"0 0 1,15 * *", "2026-03-02 00:00", "2026-03-15 00:00"},
		{"0 0 31 * *", "2026-04-01 00:00", "2026-05-31 00:00"}, // April has no 31st
		{"0 0 29 feb *", "2026-03-01 00:00", "2028-02-29 00:00"},
		{"0 12 * jun-aug *", "2026-03-10 00:00", "2026-06-01 12:00"},
		{"0 0 * * mon", "2026-03-10 00:00", "2026-03-16 00:00"}, // 2026-03-10 is a Tuesday
		{"0 0 * * 7", "2026-03-10 00:00", "2026-03-15 00:00"},   // 7 is Sunday
		{"0 0 * * sun", "2026-03-10 00:00", "2026-03-15 00:00"},
		{"0 0 * * 1-5", "2026-03-13 12:00", "2026-03-16 00:00"}, // Friday to Monday
		// Both day fields restricted: either matches (Vixie cron).
		{"0 0 13 * fri", "2026-03-10 00:00", "2026-03-13 00:00"}, // Friday the 13th
		{"0 0 1 * mon", "2026-03-10 00:00", "2026-03-16 00:00"},  // Monday before the 1st
		{"0 0 20 * mon", "2026-03-16 01:00", "2026-03-20 00:00"}, // the 20th before Monday
		// One day field a star (even with a step): both must match.
		{"0 0 */1 * mon", "2026-03-10 00:00", "2026-03-16 00:00"},
		{"0 0 1 * *", "2026-03-10 00:00", "2026-04-01 00:00"},
		{"@hourly", "2026-03-10 12:30", "2026-03-10 13:00"},
		{"@daily", "2026-03-10 12:30", "2026-03-11 00:00"},
		{"@midnight", "2026-03-10 12:30", "2026-03-11 00:00"},
		{"@weekly", "2026-03-10 12:30", "2026-03-15 00:00"},
		{"@monthly", "2026-03-10 12:30", "2026-04-01 00:00"},
		{"@yearly", "2026-03-10 12:30", "2027-01-01 00:00"},
		{"@annually", "2026-03-10 12:30", "2027-01-01 00:00"},
		{"@every 90m", "2026-03-10 12:30", "2026-03-10 14:00"},
		{"0 0 30 feb *", "2026-03-10 12:30", ""}, // never
		{"@reboot", "2026-03-10 12:30", ""},
	} {
		s, err := Parse(tc.spec)
		if err != nil {
			t.Errorf("%d: Parse(%q): %v", i, tc.spec, err)
			continue
		}
		got := s.Next(at(tc.from))
		var want time.Time
		if tc.want != "" {
			want = at(tc.want)
		}
		if !got.Equal(want) {
			t.Errorf("%d: %q from %s: next %s, want %s", i, tc.spec, tc.from, got.Format(time.DateTime), tc.want)
		}
	}
}

func TestNextSecondsAreDropped(t *testing.T) {
	s, _ := Parse("* * * * *")
	from := at("2026-03-10 12:00").Add(59*time.Second + 5*time.Millisecond)
	if got := s.Next(from); !got.Equal(at("2026-03-10 12:01")) {
		t.Errorf("next %v", got)
	}
}

// TestNextLocal: a zone off the hour (+05:30) keeps its local hours.
func TestNextLocal(t *testing.T) {
	loc := time.FixedZone("IST", 5*3600+1800)
	s, _ := Parse("0 9 * * *")
	got := s.Next(time.Date(2026, 3, 10, 8, 10, 0, 0, loc))
	if want := time.Date(2026, 3, 10, 9, 0, 0, 0, loc); !got.Equal(want) {
		t.Errorf("next %v, want %v", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	for i, tc := range []struct{ spec, want string }{
		{"* * * *", "want 5 fields"},
		{"* * * * * *", "want 5 fields"},
		{"60 * * * *", "minute field \"60\": 60 is out of range 0-59"},
		{"* 24 * * *", "hour field"},
		{"* * 0 * *", "day of month field \"0\": 0 is out of range 1-31"},
		{"* * * 13 *", "month field"},
		{"* * * foo *", "neither a number nor a name (jan-dec)"},
		{"* * * * 8", "day of week field"},
		{"*/0 * * * *", "step \"0\""},
		{"5-1 * * * *", "runs backwards"},
		{"1,,2 * * * *", "empty list item"},
		{"@every", "@every wants a duration"},
		{"@every 10ms", "at least 1s"},
		{"@fortnightly", "unknown schedule"},
		{"@daily 3", "unknown schedule"},
	} {
		_, err := Parse(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d: Parse(%q) = %v, want an error with %q", i, tc.spec, err, tc.want)
		}
	}
}

func TestReboot(t *testing.T) {
	s, err := Parse("@reboot")
	if err != nil || !s.Reboot() {
		t.Fatalf("@reboot: %v %v", s, err)
	}
	if s, _ := Parse("@every 1s"); s.Every() != time.Second {
		t.Errorf("@every 1s: %v", s.Every())
	}
}
