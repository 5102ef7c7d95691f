package gwtest

import (
	"regexp"
	"strings"
)

// Addr returns the address gw logged for a listener ("http", "https",
// "uwsgi", "fastcgi", "stats") in its "gw serving" line, or "".
func (s *Server) Addr(proto string) string {
	re := regexp.MustCompile(`\b` + regexp.QuoteMeta(proto) + `=(\S+)`)
	for _, line := range strings.Split(s.Log(), "\n") {
		if !strings.Contains(line, "gw serving") {
			continue
		}
		if m := re.FindStringSubmatch(line); m != nil {
			return strings.Trim(m[1], `"`)
		}
	}
	return ""
}
