package reqid

import (
	"net/http"
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for i, tc := range []struct {
		id   string
		want bool
	}{
		{"abc-123", true},
		{"a", true},
		{strings.Repeat("x", 128), true},
		{"!~{}[]<>:;/?=+", true},
		{"", false},
		{strings.Repeat("x", 129), false},
		{"has space", false},
		{"tab\there", false},
		{"new\nline", false},
		{"nul\x00", false},
		{"del\x7f", false},
		{"caf\xc3\xa9", false}, // UTF-8 é
	} {
		if got := Valid(tc.id); got != tc.want {
			t.Errorf("%d: Valid(%q) = %v, want %v", i, tc.id, got, tc.want)
		}
	}
}

const goodTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestValidTraceparent(t *testing.T) {
	for _, tc := range []struct {
		name string
		tp   string
		want bool
	}{
		{"spec example", goodTP, true},
		{"unsampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"other flags", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09", true},
		{"future version, exact", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"future version, extra field", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future", true},
		{"future version, no dash after flags", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", false},
		{"version 00 with extra", goodTP + "-00", false},
		{"version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"upper-case hex", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", false},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"zero parent id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"short trace id", "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01", false},
		{"no dashes", "004bf92f3577b34da6a3ce929d0e0e473600f067aa0ba902b701", false},
		{"non-hex", "00-4bf92f3577b34da6a3ce929d0g0e4736-00f067aa0ba902b7-01", false},
		{"non-hex flags", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x", false},
		{"non-hex version", "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"truncated", goodTP[:54], false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidTraceparent(tc.tp); got != tc.want {
				t.Errorf("ValidTraceparent(%q) = %v, want %v", tc.tp, got, tc.want)
			}
		})
	}
}

func TestNewValues(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := New()
		if len(id) != 32 || !isHex(id) || !Valid(id) {
			t.Fatalf("New() = %q: want 32 lower-case hex digits", id)
		}
		if seen[id] {
			t.Fatalf("New() repeated %q", id)
		}
		seen[id] = true
		tp := NewTraceparent()
		if !ValidTraceparent(tp) || !strings.HasPrefix(tp, "00-") || !strings.HasSuffix(tp, "-01") {
			t.Fatalf("NewTraceparent() = %q: not a valid sampled version-00 traceparent", tp)
		}
	}
}

func TestApply(t *testing.T) {
	const state = "congo=t61rcWkgMzE"
	for _, tc := range []struct {
		name        string
		in          http.Header
		keepID      bool // the client's id survives
		keepTP      bool // the client's traceparent survives
		wantStateOK bool // tracestate survives
	}{
		{name: "both valid", keepID: true, keepTP: true, wantStateOK: true,
			in: http.Header{Header: {"abc-123"}, Traceparent: {goodTP}, tracestate: {state}}},
		{name: "none", in: http.Header{}},
		{name: "bad id, good traceparent", keepTP: true, wantStateOK: true,
			in: http.Header{Header: {"has space"}, Traceparent: {goodTP}, tracestate: {state}}},
		{name: "two ids", keepTP: true,
			in: http.Header{Header: {"a", "b"}, Traceparent: {goodTP}}},
		{name: "bad traceparent drops tracestate", keepID: true,
			in: http.Header{Header: {"abc-123"}, Traceparent: {"00-xyz"}, tracestate: {state}}},
		{name: "two traceparents", keepID: true,
			in: http.Header{Header: {"abc-123"}, Traceparent: {goodTP, goodTP}}},
		{name: "tracestate without traceparent", keepID: true,
			in: http.Header{Header: {"abc-123"}, tracestate: {state}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.in.Clone()
			id := Apply(tc.in)
			if got := tc.in[Header]; len(got) != 1 || got[0] != id || !Valid(id) {
				t.Errorf("X-Request-Id = %q, returned %q: want one valid id, the one returned", got, id)
			}
			if kept := id == before.Get(Header); kept != tc.keepID {
				t.Errorf("client id %q kept = %v, want %v (got %q)", before.Get(Header), kept, tc.keepID, id)
			}
			tp := tc.in[Traceparent]
			if len(tp) != 1 || !ValidTraceparent(tp[0]) {
				t.Fatalf("traceparent = %q: want one valid value", tp)
			}
			if kept := tp[0] == before.Get(Traceparent); kept != tc.keepTP {
				t.Errorf("client traceparent kept = %v, want %v (got %q)", kept, tc.keepTP, tp[0])
			}
			if got := tc.in.Get(tracestate) == state; got != tc.wantStateOK {
				t.Errorf("tracestate kept = %v, want %v", got, tc.wantStateOK)
			}
		})
	}
}

func BenchmarkApply(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Apply(http.Header{})
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		New()
		NewTraceparent()
	}
}
