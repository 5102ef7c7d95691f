package uwsgi

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// minimalGET is protocols.md §1.1's worked example, byte for byte.
var minimalGET = []byte("\x00\x23\x00\x00" + "\x0e\x00REQUEST_METHOD\x03\x00GET" + "\x09\x00PATH_INFO\x01\x00/")

type kv struct{ k, v string }

var varsTests = []struct {
	name  string
	vars  []kv
	block []byte
}{
	{"minimal GET", []kv{{"REQUEST_METHOD", "GET"}, {"PATH_INFO", "/"}}, minimalGET[4:]},
	{"empty value survives", []kv{{"HTTP_X_E", ""}}, []byte("\x08\x00HTTP_X_E\x00\x00")},
	{"duplicates kept in order", []kv{{"HTTP_COOKIE", "a=1"}, {"HTTP_COOKIE", "b=2"}},
		[]byte("\x0b\x00HTTP_COOKIE\x03\x00a=1\x0b\x00HTTP_COOKIE\x03\x00b=2")},
	{"256-byte value", []kv{{"V", strings.Repeat("v", 256)}}, []byte("\x01\x00V\x00\x01" + strings.Repeat("v", 256))},
	{"non-ASCII bytes pass through", []kv{{"HTTP_X_N", "\xc3\xa9"}}, []byte("\x08\x00HTTP_X_N\x02\x00\xc3\xa9")},
	// §1.6: a value exactly 65535-4-keylen long fills datasize=65535.
	{"datasize 65535", []kv{{"K", strings.Repeat("x", MaxVarsSize-4-1)}},
		[]byte("\x01\x00K\xfa\xff" + strings.Repeat("x", MaxVarsSize-4-1))},
	{"empty block", nil, []byte{}},
}

func TestVars(t *testing.T) {
	for _, tc := range varsTests {
		t.Run(tc.name, func(t *testing.T) {
			var enc []byte
			for _, p := range tc.vars {
				enc = AppendVar(enc, p.k, p.v)
			}
			if !bytes.Equal(enc, tc.block) {
				t.Fatalf("AppendVar = % x…\nwant % x…", enc[:min(len(enc), 40)], tc.block[:min(len(tc.block), 40)])
			}
			var got []kv
			if err := ParseVars(tc.block, func(k, v []byte) error {
				got = append(got, kv{string(k), string(v)})
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.vars) {
				t.Fatalf("parsed %d vars, want %d", len(got), len(tc.vars))
			}
			for i := range got {
				if got[i] != tc.vars[i] {
					t.Fatalf("var %d = %.40q, want %.40q", i, got[i], tc.vars[i])
				}
			}
		})
	}
}

func TestPacket(t *testing.T) {
	p, err := AppendPacket(nil, 0, 0, minimalGET[4:])
	if err != nil || !bytes.Equal(p, minimalGET) {
		t.Fatalf("AppendPacket = % x, %v\nwant % x", p, err, minimalGET)
	}
	h, err := ParseHeader(minimalGET)
	if err != nil || h != (Header{0, 35, 0}) {
		t.Fatalf("ParseHeader = %+v, %v", h, err)
	}
	// datasize is little-endian: 0x1234 is 34 12.
	if got := (Header{22, 0x1234, 5}).Append(nil); !bytes.Equal(got, []byte{22, 0x34, 0x12, 5}) {
		t.Fatalf("Header.Append = % x", got)
	}
	if _, err := ParseHeader([]byte{0, 1, 0}); err == nil {
		t.Fatal("3-byte header accepted")
	}
	if _, err := AppendPacket(nil, 0, 0, make([]byte, MaxVarsSize+1)); err == nil {
		t.Fatal("65536-byte vars block accepted")
	}
}

func TestParseVarsErrors(t *testing.T) {
	tests := []struct {
		name, block, want string
	}{
		{"zero-length key", "\x00\x00\x01\x00v", "zero-length key at offset 0"},
		{"zero-length key after a good var", "\x01\x00a\x00\x00\x00\x00\x00\x00", "zero-length key at offset 5"},
		{"key overruns", "\x05\x00abc", "key length 5 at offset 0 overruns the 5-byte vars block"},
		{"value overruns", "\x01\x00a\x09\x00abc", "value length 9 at offset 3 overruns"},
		{"key length cut", "\x01", "key length at offset 0 cut off"},
		{"value length missing", "\x01\x00a", "value length at offset 3 cut off"},
		{"value length cut", "\x01\x00a\x01", "value length at offset 3 cut off"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ParseVars([]byte(tc.block), func(_, _ []byte) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	stop := errors.New("stop")
	if err := ParseVars(minimalGET[4:], func(_, _ []byte) error { return stop }); err != stop {
		t.Fatalf("fn error not returned as is: %v", err)
	}
}

// FuzzVars: ParseVars never panics, and what it accepts re-encodes to the
// very same bytes (the encoding has one form, unlike FastCGI's lengths).
func FuzzVars(f *testing.F) {
	for _, tc := range varsTests {
		if len(tc.block) < 4096 {
			f.Add(tc.block)
		}
	}
	f.Add([]byte("\x00\x00\x01\x00v"))
	f.Add([]byte("\x01\x00a\x09\x00abc"))
	f.Fuzz(func(t *testing.T, block []byte) {
		var enc []byte
		if err := ParseVars(block, func(k, v []byte) error {
			if len(k) == 0 {
				t.Fatal("zero-length key accepted")
			}
			enc = AppendVar(enc, string(k), string(v))
			return nil
		}); err != nil {
			return
		}
		if !bytes.Equal(enc, block) {
			t.Fatalf("round trip changed the block")
		}
	})
}

func BenchmarkParseVars(b *testing.B) {
	var block []byte
	for _, p := range [][2]string{{"QUERY_STRING", ""}, {"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/a/b?c=d"},
		{"PATH_INFO", "/a/b"}, {"SERVER_PROTOCOL", "HTTP/1.1"}, {"HTTP_HOST", "example.com"},
		{"HTTP_USER_AGENT", strings.Repeat("u", 120)}, {"HTTP_ACCEPT", "*/*"}} {
		block = AppendVar(block, p[0], p[1])
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(block)))
	for b.Loop() {
		if err := ParseVars(block, func(_, _ []byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
