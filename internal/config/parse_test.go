package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Size
		err  string // substring of the error; "" = no error
	}{
		{name: "bytes", in: "4096", want: 4096},
		{name: "zero", in: "0", want: 0},
		{name: "KiB", in: "64KiB", want: 64 << 10},
		{name: "MiB", in: "512MiB", want: 512 << 20},
		{name: "GiB", in: "1GiB", want: 1 << 30},
		{name: "TiB", in: "2TiB", want: 2 << 40},
		{name: "KB is decimal", in: "10KB", want: 10_000},
		{name: "MB is decimal", in: "10MB", want: 10_000_000},
		{name: "GB is decimal", in: "3GB", want: 3_000_000_000},
		{name: "K is binary", in: "8K", want: 8 << 10},
		{name: "M is binary", in: "8M", want: 8 << 20},
		{name: "G is binary", in: "1G", want: 1 << 30},
		{name: "lower case", in: "64kib", want: 64 << 10},
		{name: "upper case", in: "1GIB", want: 1 << 30},
		{name: "B suffix", in: "100B", want: 100},
		{name: "space before unit", in: "64 KiB", want: 64 << 10},
		{name: "surrounding space", in: " 1m ", want: 1 << 20},
		{name: "empty", in: "", err: "want a whole number"},
		{name: "unit only", in: "KiB", err: "want a whole number"},
		{name: "negative", in: "-1", err: "want a whole number"},
		{name: "fraction", in: "1.5GiB", err: "whole number"},
		{name: "unknown unit", in: "10XB", err: `unknown unit "XB"`},
		{name: "overflow in unit", in: "9000000000GiB", err: "too large"},
		{name: "overflow in number", in: "99999999999999999999", err: "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSize(tc.in)
			checkErr(t, err, tc.err)
			if tc.err == "" && got != tc.want {
				t.Errorf("ParseSize(%q) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

func TestSizeString(t *testing.T) {
	tests := []struct {
		in   Size
		want string
	}{
		{0, "0"}, {100, "100"}, {64 << 10, "64KiB"}, {1 << 30, "1GiB"}, {1536 << 10, "1536KiB"}, {10_000_000, "10000000"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.in.String(); got != tc.want {
				t.Errorf("Size(%d).String() = %q, want %q", int64(tc.in), got, tc.want)
			}
		})
	}
}

func TestParseAddr(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Addr
		err  string
	}{
		{name: "port only", in: ":8080", want: Addr{"tcp", ":8080"}},
		{name: "host and port", in: "127.0.0.1:9000", want: Addr{"tcp", "127.0.0.1:9000"}},
		{name: "name and port", in: "localhost:80", want: Addr{"tcp", "localhost:80"}},
		{name: "ipv6", in: "[::1]:8443", want: Addr{"tcp", "[::1]:8443"}},
		{name: "port zero", in: "127.0.0.1:0", want: Addr{"tcp", "127.0.0.1:0"}},
		{name: "unix", in: "unix:/run/gw/gw.sock", want: Addr{"unix", "/run/gw/gw.sock"}},
		{name: "unix relative", in: "unix:gw.sock", want: Addr{"unix", "gw.sock"}},
		{name: "unix empty", in: "unix:", err: "socket path"},
		{name: "bare port", in: "8080", err: `did you mean ":8080"?`},
		{name: "no port", in: "localhost", err: "want host:port"},
		{name: "bad port", in: ":http", err: "not a number"},
		{name: "port too big", in: ":70000", err: "not a number"},
		{name: "url", in: "http://x:80", err: "want host:port"},
		{name: "empty", in: "", err: "want host:port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAddr(tc.in)
			checkErr(t, err, tc.err)
			if tc.err == "" && got != tc.want {
				t.Errorf("ParseAddr(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			if tc.err == "" && got.String() != tc.in {
				t.Errorf("ParseAddr(%q).String() = %q, want it back", tc.in, got.String())
			}
		})
	}
}

func TestParseLang(t *testing.T) {
	tests := []struct {
		in   string
		want Lang
		err  string
	}{
		{in: "python", want: LangPython},
		{in: "Ruby", want: LangRuby},
		{in: "perl", want: LangPerl},
		{in: "PHP", want: LangPHP},
		{in: "go", want: LangGo},
		{in: "auto", want: LangAuto},
		{in: "pyhton", err: `did you mean "python"?`},
		{in: "java", err: "want one of python, ruby, perl, php, go, auto"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseLang(tc.in)
			checkErr(t, err, tc.err)
			if got != tc.want {
				t.Errorf("ParseLang(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "60s", want: time.Minute},
		{in: "1m30s", want: 90 * time.Second},
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "75", err: `no unit; write e.g. "75s"`},
		{in: "soon", err: "want a number with a unit"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseDuration(tc.in)
			checkErr(t, err, tc.err)
			if got != tc.want {
				t.Errorf("parseDuration(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in   string
		want uint32
		err  string
	}{
		{in: "0660", want: 0o660},
		{in: "660", want: 0o660},
		{in: "0o600", want: 0o600},
		{in: "0777", want: 0o777},
		{in: "1777", err: "0000 to 0777"},
		{in: "0689", err: "octal"},
		{in: "rw", err: "octal"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseMode(tc.in)
			checkErr(t, err, tc.err)
			if got != tc.want {
				t.Errorf("parseMode(%q) = %o, want %o", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseOwner(t *testing.T) {
	tests := []struct {
		in   string
		want Owner
		err  string
	}{
		{in: "www-data", want: Owner{User: "www-data"}},
		{in: "www-data:nginx", want: Owner{User: "www-data", Group: "nginx"}},
		{in: ":nginx", want: Owner{Group: "nginx"}},
		{in: "33:33", want: Owner{User: "33", Group: "33"}},
		{in: ":", err: "USER:GROUP"},
		{in: "a:b:c", err: "USER:GROUP"},
		{in: "www data", err: "USER:GROUP"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseOwner(tc.in)
			checkErr(t, err, tc.err)
			if got != tc.want {
				t.Errorf("parseOwner(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestNormMount(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "/", want: "/"},
		{in: "/blog", want: "/blog"},
		{in: "/blog/", want: "/blog"},
		{in: "/a/b//", want: "/a/b"},
		{in: "//", want: "/"},
		{in: "blog", err: `must start with "/"`},
		{in: "", err: `must start with "/"`},
		{in: "/a?b", err: "without query"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := normMount(tc.in)
			checkErr(t, err, tc.err)
			if got != tc.want {
				t.Errorf("normMount(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestNormHost(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "blog.example.com", want: "blog.example.com"},
		{in: "Blog.Example.COM", want: "blog.example.com"},
		{in: "blog.example.com:8080", want: "blog.example.com"},
		{in: "[::1]:80", want: "::1"},
		{in: "[::1]", want: "::1"},
		{in: "http://blog", err: "without scheme"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := normHost(tc.in)
			checkErr(t, err, tc.err)
			if got != tc.want {
				t.Errorf("normHost(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// checkErr fails t unless err matches want: nil for "", else containing it.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}
