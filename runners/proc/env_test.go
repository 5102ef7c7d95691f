package proc

import (
	"strings"
	"testing"
)

func TestInterpreter(t *testing.T) {
	tests := []struct {
		configured, def string
		wantSuffix      string // of the resolved path; "" = an error naming the language
	}{
		{"", "sh", "/sh"},
		{"/bin/sh", "nope-not-here", "/bin/sh"},
		{"", "nope-not-here", ""},
		{"/nonexistent/perl", "perl", ""},
	}
	for _, tc := range tests {
		path, err := Interpreter(tc.configured, tc.def, "perl")
		if tc.wantSuffix == "" {
			if err == nil || !strings.Contains(err.Error(), "perl interpreter") || !strings.Contains(err.Error(), "--interpreter") {
				t.Errorf("%q/%q: %q, %v; want an error naming perl and --interpreter", tc.configured, tc.def, path, err)
			}
			continue
		}
		if err != nil || !strings.HasSuffix(path, tc.wantSuffix) {
			t.Errorf("%q/%q: %q, %v; want a path ending %q", tc.configured, tc.def, path, err, tc.wantSuffix)
		}
	}
}
