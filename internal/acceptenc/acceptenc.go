// Package acceptenc reads Accept-Encoding (RFC 9110 §12.5.3): which of the
// content codings gw can send a client takes, and which it prefers. Shared
// by the gateway's compression and the static files' precompressed
// siblings, so both read q-values the same way.
package acceptenc

import "strings"

// Coding is a set of content codings gw knows.
type Coding uint8

const (
	Zstd Coding = 1 << iota
	Brotli
	Gzip
)

// Token is the coding's name in Content-Encoding ("" for a set or none).
func (c Coding) Token() string {
	switch c {
	case Zstd:
		return "zstd"
	case Brotli:
		return "br"
	case Gzip:
		return "gzip"
	}
	return ""
}

// Suffix is the file name suffix of a precompressed sibling in c.
func (c Coding) Suffix() string {
	switch c {
	case Zstd:
		return ".zst"
	case Brotli:
		return ".br"
	case Gzip:
		return ".gz"
	}
	return ""
}

// Best is the coding of offer the client's Accept-Encoding values prefer:
// the highest q-value, ties going to zstd, then br, then gzip (smaller,
// then faster to decode, than gzip). 0 when none is acceptable: no header,
// or only q=0 or unknown codings. "*" stands for every coding not named;
// "x-gzip" is gzip (RFC 9110 §8.4.1.3). It does not allocate.
func Best(values []string, offer Coding) Coding {
	var q [3]int // per coding, in thousandths; -1 = not named
	q[0], q[1], q[2] = -1, -1, -1
	star := -1
	for _, v := range values {
		for v != "" {
			var item string
			item, v, _ = strings.Cut(v, ",")
			name, params, _ := strings.Cut(item, ";")
			name = strings.TrimSpace(name)
			w := qvalue(params)
			switch {
			case strings.EqualFold(name, "zstd"):
				q[0] = max(q[0], w)
			case strings.EqualFold(name, "br"):
				q[1] = max(q[1], w)
			case strings.EqualFold(name, "gzip"), strings.EqualFold(name, "x-gzip"):
				q[2] = max(q[2], w)
			case name == "*":
				star = max(star, w)
			}
		}
	}
	best, bestQ := Coding(0), 0
	for i, c := range [3]Coding{Zstd, Brotli, Gzip} {
		w := q[i]
		if w < 0 {
			w = star
		}
		if offer&c != 0 && w > bestQ {
			best, bestQ = c, w
		}
	}
	return best
}

// qvalue reads "q=0.5" among a coding's parameters, in thousandths; 1000
// without one, 0 for a malformed one (refusing is the safe reading).
func qvalue(params string) int {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, val, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		val = strings.TrimSpace(val)
		if val == "" || (val[0] != '0' && val[0] != '1') {
			return 0
		}
		n, scale := int(val[0]-'0')*1000, 100
		if len(val) > 1 {
			if val[1] != '.' || len(val) > 5 {
				return 0
			}
			for _, c := range val[2:] {
				if c < '0' || c > '9' {
					return 0
				}
				n += int(c-'0') * scale
				scale /= 10
			}
		}
		return min(n, 1000)
	}
	return 1000
}
