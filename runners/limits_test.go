package runners

import "testing"

func TestDirName(t *testing.T) {
	for in, want := range map[string]string{
		"blog": "blog", "api.v2": "api.v2", "a/../b": "a_.._b", "..": "_..", "": "_", "é": "__",
	} {
		if got := dirName(in); got != want {
			t.Errorf("dirName(%q) = %q, want %q", in, got, want)
		}
	}
}
