package fcgi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// rec builds a record by hand, independent of the code under test.
func rec(t Type, id uint16, content string, pad int, reserved byte) []byte {
	b := []byte{1, byte(t), byte(id >> 8), byte(id), byte(len(content) >> 8), byte(len(content)), byte(pad), reserved}
	b = append(b, content...)
	return append(b, make([]byte, pad)...)
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

var paramTests = []struct {
	name, value string
	raw         []byte
}{
	{"REQUEST_METHOD", "GET", []byte("\x0e\x03REQUEST_METHOD" + "GET")},
	{"", "", []byte{0, 0}},
	{"E", "", []byte("\x01\x00E")},
	{"V127", strings.Repeat("a", 127), []byte("\x04\x7fV127" + strings.Repeat("a", 127))},
	{"V128", strings.Repeat("b", 128), []byte("\x04\x80\x00\x00\x80V128" + strings.Repeat("b", 128))},
	// protocols.md §2.2: a 200-byte value is 80 00 00 c8.
	{"V200", strings.Repeat("c", 200), []byte("\x04\x80\x00\x00\xc8V200" + strings.Repeat("c", 200))},
	{strings.Repeat("N", 128), "v", []byte("\x80\x00\x00\x80\x01" + strings.Repeat("N", 128) + "v")},
	{"BIG", strings.Repeat("d", 65000), []byte("\x03\x80\x00\xfd\xe8BIG" + strings.Repeat("d", 65000))},
}

func TestAppendParam(t *testing.T) {
	for _, tc := range paramTests {
		t.Run(fmt.Sprintf("%.8s/%d", tc.name, len(tc.value)), func(t *testing.T) {
			got := AppendParam(nil, tc.name, tc.value)
			if !bytes.Equal(got, tc.raw) {
				t.Fatalf("AppendParam = % x\nwant % x", head(got), head(tc.raw))
			}
			if n := ParamLen(tc.name, tc.value); n != len(tc.raw) {
				t.Errorf("ParamLen = %d, want %d", n, len(tc.raw))
			}
			var pairs []Pair
			if err := ParseParams(tc.raw, func(n, v []byte) error {
				pairs = append(pairs, Pair{string(n), string(v)})
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(pairs) != 1 || pairs[0] != (Pair{tc.name, tc.value}) {
				t.Fatalf("ParseParams = %.40q", pairs)
			}
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 24)] }

func TestParseParamsErrors(t *testing.T) {
	tests := []struct {
		desc string
		raw  []byte
		want string
	}{
		{"name length cut", []byte{0x80, 0}, "name length cut off at offset 0"},
		{"value length cut", []byte("\x01\x80\x00"), "value length cut off at offset 0"},
		{"name overruns", []byte("\x05\x00abc"), "overruns"},
		{"value overruns", []byte("\x01\x05ab"), "overruns"},
		{"second pair overruns", []byte("\x01\x01ab\x01\x7fc"), "pair at offset 4"},
		{"huge 4-byte length", []byte("\xff\xff\xff\xff\x00"), "overruns"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			err := ParseParams(tc.raw, func(_, _ []byte) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	stop := errors.New("stop")
	if err := ParseParams([]byte("\x01\x01ab"), func(_, _ []byte) error { return stop }); err != stop {
		t.Fatalf("fn error not returned as is: %v", err)
	}
}

var streamTests = []struct {
	desc    string
	recType Type
	id      uint16
	content []byte
	raw     []byte
}{
	{"empty stdout", TypeStdout, 1, nil, rec(TypeStdout, 1, "", 0, 0)},
	{"one byte, padded to 8", TypeStdout, 1, []byte("a"), cat(rec(TypeStdout, 1, "a", 7, 0), rec(TypeStdout, 1, "", 0, 0))},
	{"aligned content", TypeStdin, 0x0102, []byte("12345678"), cat(rec(TypeStdin, 0x0102, "12345678", 0, 0), rec(TypeStdin, 0x0102, "", 0, 0))},
	{"65535 in one record", TypeStdout, 1, bytes.Repeat([]byte("x"), 65535),
		cat(rec(TypeStdout, 1, strings.Repeat("x", 65535), 1, 0), rec(TypeStdout, 1, "", 0, 0))},
	{"65536 in two records", TypeStderr, 7, bytes.Repeat([]byte("y"), 65536),
		cat(rec(TypeStderr, 7, strings.Repeat("y", 65535), 1, 0), rec(TypeStderr, 7, "y", 7, 0), rec(TypeStderr, 7, "", 0, 0))},
}

func TestStreamWriter(t *testing.T) {
	for _, tc := range streamTests {
		t.Run(tc.desc, func(t *testing.T) {
			var out bytes.Buffer
			w := &StreamWriter{W: &out, Type: tc.recType, ID: tc.id, Align: true}
			if _, err := w.Write(tc.content); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), tc.raw) {
				t.Fatalf("wrote %d bytes % x…, want %d bytes % x…", out.Len(), head(out.Bytes()), len(tc.raw), head(tc.raw))
			}
			if _, err := w.Write([]byte("late")); err == nil {
				t.Error("write after Close succeeded")
			}
		})
	}
}

// TestStreamWriterReadFrom: io.Copy's path (ReadFrom) frames the same
// records as Write, however the source splits its reads.
func TestStreamWriterReadFrom(t *testing.T) {
	for _, tc := range streamTests {
		for _, split := range []string{"whole", "one byte"} {
			t.Run(tc.desc+"/"+split, func(t *testing.T) {
				var src io.Reader = bytes.NewReader(tc.content)
				if split == "one byte" {
					src = iotest.OneByteReader(src)
				}
				var out bytes.Buffer
				w := &StreamWriter{W: &out, Type: tc.recType, ID: tc.id, Align: true}
				if n, err := io.Copy(w, src); err != nil || n != int64(len(tc.content)) {
					t.Fatalf("copied %d, %v; want %d", n, err, len(tc.content))
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Bytes(), tc.raw) {
					t.Fatalf("wrote %d bytes % x…, want %d bytes % x…", out.Len(), head(out.Bytes()), len(tc.raw), head(tc.raw))
				}
			})
		}
	}
}

func TestReaderStreams(t *testing.T) {
	for _, tc := range streamTests {
		t.Run(tc.desc, func(t *testing.T) {
			// One byte per read: every header arrives split.
			r := NewReader(bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(tc.raw)), 16))
			var got []byte
			for {
				h, content, err := r.Next()
				if err != nil {
					t.Fatal(err)
				}
				if h.Type != tc.recType || h.ID != tc.id {
					t.Fatalf("record %s id %d, want %s id %d", h.Type, h.ID, tc.recType, tc.id)
				}
				if len(content) == 0 {
					break
				}
				got = append(got, content...)
			}
			if !bytes.Equal(got, tc.content) {
				t.Fatalf("content %d bytes, want %d", len(got), len(tc.content))
			}
			if _, _, err := r.Next(); err != io.EOF {
				t.Fatalf("after the stream: %v, want io.EOF", err)
			}
		})
	}
}

func TestReaderPaddingAndReserved(t *testing.T) {
	// Any padding 0-255 and any reserved byte (php-cgi leaves garbage
	// there, protocols.md §2.1) must be accepted.
	raw := cat(rec(TypeStdout, 1, "ab", 0, 'l'), rec(TypeStdout, 1, "cd", 7, 'o'), rec(TypeStdout, 1, "ef", 255, 0xff))
	r := NewReader(bufio.NewReader(bytes.NewReader(raw)))
	for _, want := range []string{"ab", "cd", "ef"} {
		_, c, err := r.Next()
		if err != nil || string(c) != want {
			t.Fatalf("Next = %q, %v; want %q", c, err, want)
		}
	}
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("got %v, want io.EOF", err)
	}
}

func TestReaderErrors(t *testing.T) {
	tests := []struct {
		desc string
		raw  []byte
		want error
	}{
		{"header cut", []byte{1, 6, 0}, io.ErrUnexpectedEOF},
		{"content cut", rec(TypeStdout, 1, "abcd", 0, 0)[:10], io.ErrUnexpectedEOF},
		{"padding cut", rec(TypeStdout, 1, "abcd", 4, 0)[:14], io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, _, err := NewReader(bufio.NewReader(bytes.NewReader(tc.raw))).Next()
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	_, _, err := NewReader(bufio.NewReader(bytes.NewReader([]byte{2, 1, 0, 1, 0, 0, 0, 0}))).Next()
	if err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("version 2 accepted: %v", err)
	}
}

func TestManagementRecords(t *testing.T) {
	tests := []struct {
		desc string
		got  []byte
		raw  []byte
	}{
		{"begin responder keep-conn", AppendBeginRequest(nil, 1, RoleResponder, true), rec(TypeBeginRequest, 1, "\x00\x01\x01\x00\x00\x00\x00\x00", 0, 0)},
		{"begin filter", AppendBeginRequest(nil, 0x1234, RoleFilter, false), rec(TypeBeginRequest, 0x1234, "\x00\x03\x00\x00\x00\x00\x00\x00", 0, 0)},
		{"end complete", AppendEndRequest(nil, 1, 0, StatusRequestComplete), rec(TypeEndRequest, 1, "\x00\x00\x00\x00\x00\x00\x00\x00", 0, 0)},
		{"end cant mpx", AppendEndRequest(nil, 2, 0x01020304, StatusCantMultiplex), rec(TypeEndRequest, 2, "\x01\x02\x03\x04\x01\x00\x00\x00", 0, 0)},
		{"unknown type 12", AppendUnknownType(nil, 12), rec(TypeUnknownType, 0, "\x0c\x00\x00\x00\x00\x00\x00\x00", 0, 0)},
		{"get values", must(AppendGetValues(nil, MaxConns, MaxReqs, MpxsConns)),
			rec(TypeGetValues, 0, "\x0e\x00FCGI_MAX_CONNS\x0d\x00FCGI_MAX_REQS\x0f\x00FCGI_MPXS_CONNS", 0, 0)},
		{"get values result", must(AppendGetValuesResult(nil, []Pair{{MaxConns, "2"}, {MpxsConns, "0"}})),
			rec(TypeGetValuesResult, 0, "\x0e\x01FCGI_MAX_CONNS2\x0f\x01FCGI_MPXS_CONNS0", 5, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if !bytes.Equal(tc.got, tc.raw) {
				t.Fatalf("got  % x\nwant % x", tc.got, tc.raw)
			}
		})
	}
	br, err := ParseBeginRequest([]byte("\x00\x01\x01\xff\xff\xff\xff\xff"))
	if err != nil || br.Role != RoleResponder || !br.KeepConn() {
		t.Fatalf("ParseBeginRequest = %+v, %v", br, err)
	}
	// Stale bytes in END_REQUEST's reserved field, as php-cgi sends.
	er, err := ParseEndRequest([]byte("\x00\x00\x00\x07\x03llo"))
	if err != nil || er != (EndRequest{7, StatusUnknownRole}) {
		t.Fatalf("ParseEndRequest = %+v, %v", er, err)
	}
	if ut, err := ParseUnknownType([]byte("\x0c\x01\x02\x03\x04\x05\x06\x07")); err != nil || ut != 12 {
		t.Fatalf("ParseUnknownType = %v, %v", ut, err)
	}
	for _, f := range []func([]byte) error{
		func(b []byte) error { _, err := ParseBeginRequest(b); return err },
		func(b []byte) error { _, err := ParseEndRequest(b); return err },
		func(b []byte) error { _, err := ParseUnknownType(b); return err },
	} {
		if f(make([]byte, 7)) == nil || f(make([]byte, 9)) == nil {
			t.Error("a 7- or 9-byte management body was accepted")
		}
	}
	names, err := ParseGetValues([]byte("\x0e\x00FCGI_MAX_CONNS\x03\x00FOO"))
	if err != nil || strings.Join(names, ",") != "FCGI_MAX_CONNS,FOO" {
		t.Fatalf("ParseGetValues = %q, %v", names, err)
	}
	vals, err := ParseGetValuesResult([]byte("\x0f\x01FCGI_MPXS_CONNS0"))
	if err != nil || len(vals) != 1 || vals[MpxsConns] != "0" {
		t.Fatalf("ParseGetValuesResult = %v, %v", vals, err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
