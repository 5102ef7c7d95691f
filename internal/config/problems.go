package config

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with the configuration. Line and Col are set
// (1-based) when it comes from the config file; Path says where the value
// sits ("apps[1].workers") or where it came from ("--workers", "GW_WORKERS").
type Problem struct {
	File string
	Path string
	Line int
	Col  int
	Msg  string
}

// String renders the problem as "FILE:LINE:COL: path: message", dropping the
// parts that are not known, so editors and CI annotate the right line.
func (p Problem) String() string {
	var parts []string
	switch {
	case p.File != "" && p.Line > 0:
		parts = append(parts, fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col))
	case p.File != "":
		parts = append(parts, p.File)
	}
	if p.Path != "" {
		parts = append(parts, p.Path)
	}
	return strings.Join(append(parts, p.Msg), ": ")
}

// Problems is every problem Load found; it is the error Load returns, so a
// user fixes a config in one round instead of one error per run.
type Problems []Problem

// Error lists the problems one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// collector gathers problems while Load keeps going.
type collector struct {
	file  string
	probs Problems
}

// at records a problem about a file node; n may be nil.
func (c *collector) at(n *yaml.Node, path, format string, args ...any) {
	p := Problem{Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		p.File, p.Line, p.Col = c.file, n.Line, n.Column
	}
	c.probs = append(c.probs, p)
}

// of records a problem about a value wherever it came from.
func (c *collector) of(v value, format string, args ...any) {
	c.at(v.node, v.path, format, args...)
}

// sorted returns the problems in file order, then the ones without a
// position (flags, environment, whole-config) in the order they were found.
func (c *collector) sorted() Problems {
	out := append(Problems(nil), c.probs...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.Line > 0) != (b.Line > 0) {
			return a.Line > 0
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return out
}

// suggest returns the valid key nearest to an unknown one: edit distance of
// at most 2, or else a prefix match (either way round) of 3+ characters.
// Ties go to the alphabetically first key so the output is stable.
func suggest(unknown string, valid []string) string {
	norm := strings.ToLower(strings.ReplaceAll(unknown, "-", "_"))
	best, bestDist := "", 3
	for _, k := range sorted(valid) {
		if d := levenshtein(norm, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" || len(norm) < 3 {
		return best
	}
	for _, k := range sorted(valid) {
		if strings.HasPrefix(k, norm) || strings.HasPrefix(norm, k) {
			return k
		}
	}
	return ""
}

// didYouMean formats a suggestion as a message suffix, or "".
func didYouMean(unknown string, valid []string) string {
	if s := suggest(unknown, valid); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}

func sorted(ss []string) []string {
	out := append([]string(nil), ss...)
	sort.Strings(out)
	return out
}

// levenshtein is the edit distance between a and b (insert, delete,
// substitute, each costing 1), on bytes: keys are ASCII.
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
