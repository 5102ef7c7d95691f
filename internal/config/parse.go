package config

import (
	"fmt"
	"math"
	"net"
	"path"
	"strconv"
	"strings"
	"time"
)

// sizeUnits maps a lower-cased suffix to its multiplier. The bare letters
// are binary, as in nginx ("client_max_body_size 10m") and uWSGI; the SI
// spellings KB/MB/GB are decimal, as the IEC prefixes are defined.
var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"k":   1 << 10,
	"kib": 1 << 10,
	"kb":  1000,
	"m":   1 << 20,
	"mib": 1 << 20,
	"mb":  1000 * 1000,
	"g":   1 << 30,
	"gib": 1 << 30,
	"gb":  1000 * 1000 * 1000,
	"t":   1 << 40,
	"tib": 1 << 40,
	"tb":  1000 * 1000 * 1000 * 1000,
}

// ParseSize reads a byte count: a whole number with an optional unit,
// case-insensitive: "4096", "64KiB", "512MiB", "1GiB", "10MB", "8k".
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: want a whole number of bytes with an optional unit, like 64KiB or 512MiB", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	if strings.HasPrefix(t[i:], ".") {
		return 0, fmt.Errorf("size %q: want a whole number; use a smaller unit instead of a fraction", s)
	}
	unit := strings.ToLower(strings.TrimSpace(t[i:]))
	mul, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (want KiB, MiB, GiB, TiB, KB, MB, GB, TB, K, M, G or T)", s, t[i:])
	}
	if n > math.MaxInt64/mul {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return Size(n * mul), nil
}

// String writes the size back in the largest binary unit that divides it,
// so logs show "64KiB" rather than "65536".
func (s Size) String() string {
	for _, u := range []struct {
		name string
		n    Size
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && s%u.n == 0 {
			return strconv.FormatInt(int64(s/u.n), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// ParseAddr reads a listen address: "unix:/path/to.sock", "host:port" or
// ":port". Port 0 is allowed so tests can ask the kernel for a free port.
func ParseAddr(s string) (Addr, error) {
	if p, ok := strings.CutPrefix(s, "unix:"); ok {
		if p == "" {
			return Addr{}, fmt.Errorf("address %q: want a socket path after \"unix:\"", s)
		}
		return Addr{Network: "unix", Address: p}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if _, aerr := strconv.ParseUint(s, 10, 16); aerr == nil {
			return Addr{}, fmt.Errorf("address %q: want host:port, :port or unix:/path; did you mean \":%s\"?", s, s)
		}
		return Addr{}, fmt.Errorf("address %q: want host:port, :port or unix:/path", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return Addr{}, fmt.Errorf("address %q: port %q is not a number from 0 to 65535", s, port)
	}
	if strings.ContainsAny(host, " /") {
		return Addr{}, fmt.Errorf("address %q: %q is not a host name or IP address", s, host)
	}
	return Addr{Network: "tcp", Address: s}, nil
}

// langs lists the values --lang accepts, in the order help shows them.
var langs = []string{"python", "ruby", "perl", "php", "go", "auto"}

// ParseLang reads a language name, case-insensitively.
func ParseLang(s string) (Lang, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	for _, ok := range langs {
		if l == ok {
			return Lang(l), nil
		}
	}
	return "", fmt.Errorf("unknown lang %q: want one of %s%s", s, strings.Join(langs, ", "), didYouMean(l, langs))
}

// parseDuration reads a Go duration ("60s", "1m30s"). A bare number is
// refused rather than guessed at: uWSGI reads seconds, Go nanoseconds.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err == nil {
		return d, nil
	}
	if _, nerr := strconv.ParseFloat(strings.TrimSpace(s), 64); nerr == nil {
		return 0, fmt.Errorf("duration %q has no unit; write e.g. \"%ss\"", s, strings.TrimSpace(s))
	}
	return 0, fmt.Errorf("duration %q: want a number with a unit, like 30s, 1m30s or 500ms", s)
}

// parseMode reads a unix file mode in octal: "0660", "660", "0o660".
func parseMode(s string) (uint32, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0o"), "0O")
	m, err := strconv.ParseUint(t, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("mode %q: want an octal file mode from 0000 to 0777, like 0660", s)
	}
	return uint32(m), nil
}

// parseOwner reads chown(1)'s USER, USER:GROUP or :GROUP.
func parseOwner(s string) (Owner, error) {
	user, group, _ := strings.Cut(strings.TrimSpace(s), ":")
	if user == "" && group == "" || strings.ContainsAny(user+group, ": ") {
		return Owner{}, fmt.Errorf("owner %q: want USER, USER:GROUP or :GROUP, like www-data:www-data", s)
	}
	return Owner{User: user, Group: group}, nil
}

// normMount checks a mount point and cleans it to "/" or "/prefix" with no
// trailing slash, the form SCRIPT_NAME takes (PEP 3333, environ variables).
func normMount(s string) (string, error) {
	if !strings.HasPrefix(s, "/") {
		return "", fmt.Errorf("mount %q must start with \"/\"", s)
	}
	if strings.ContainsAny(s, "?# ") {
		return "", fmt.Errorf("mount %q: want a URL path prefix without query, fragment or spaces", s)
	}
	return path.Clean(s), nil
}

// normHost lower-cases a host name and drops any port, because routing
// compares it with the request's Host header stripped the same way.
func normHost(s string) (string, error) {
	h := strings.ToLower(strings.TrimSpace(s))
	if h == "" || strings.ContainsAny(h, "/ ") {
		return "", fmt.Errorf("host %q: want a host name like blog.example.com, without scheme or path", s)
	}
	if hp, _, err := net.SplitHostPort(h); err == nil {
		h = hp
	}
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), nil
}
