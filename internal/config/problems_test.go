package config

import "testing"

func TestSuggest(t *testing.T) {
	keys := appKeys()
	tests := []struct{ in, want string }{
		{"worker", "workers"},
		{"wrokers", "workers"},
		{"max-requests", "max_requests"},
		{"max_request", "max_requests"},
		{"calable", "callable"},
		{"max_requests_per_worker", "max_requests"},
		{"interp", "interpreter"},
		{"xyzzy", ""},
		{"ab", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := suggest(tc.in, keys); got != tc.want {
				t.Errorf("suggest(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestLevenshtein(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"worker", "workers", 1}, {"htp", "http", 1},
	}
	for _, tc := range tests {
		t.Run(tc.a+"/"+tc.b, func(t *testing.T) {
			if got := levenshtein(tc.a, tc.b); got != tc.want {
				t.Errorf("levenshtein(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		name string
		p    Problem
		want string
	}{
		{"file position", Problem{File: "gw.yaml", Line: 3, Col: 5, Path: "apps[0].worker", Msg: "unknown key"}, "gw.yaml:3:5: apps[0].worker: unknown key"},
		{"file only", Problem{File: "gw.yaml", Msg: "read config: no such file or directory"}, "gw.yaml: read config: no such file or directory"},
		{"flag", Problem{Path: "--workers", Msg: "must be at least 1, got 0"}, "--workers: must be at least 1, got 0"},
		{"bare", Problem{Msg: "nothing to serve"}, "nothing to serve"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
	ps := Problems{tests[0].p, tests[2].p}
	if got, want := ps.Error(), tests[0].want+"\n"+tests[2].want; got != want {
		t.Errorf("Problems.Error() = %q, want %q", got, want)
	}
}
