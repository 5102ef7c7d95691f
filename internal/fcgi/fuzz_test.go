package fcgi

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// FuzzParams: ParseParams never panics, and whatever it accepts encodes back
// to pairs that parse to the same thing.
func FuzzParams(f *testing.F) {
	for _, tc := range paramTests {
		if len(tc.raw) < 4096 { // big seeds only slow the fuzzer down
			f.Add(tc.raw)
		}
	}
	f.Add([]byte("\x01\x01ab\x01\x7fc"))
	f.Add([]byte{0x80, 0, 0, 1, 0x80, 0, 0, 0, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var pairs []Pair
		if err := ParseParams(b, func(n, v []byte) error {
			pairs = append(pairs, Pair{string(n), string(v)})
			return nil
		}); err != nil {
			return
		}
		var enc []byte
		for _, p := range pairs {
			enc = AppendParam(enc, p.Name, p.Value)
		}
		// Long lengths may use the 4-byte form for values < 128, so the
		// bytes can differ; the re-encoding is never longer.
		if len(enc) > len(b) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(b), len(enc))
		}
		i := 0
		if err := ParseParams(enc, func(n, v []byte) error {
			if string(n) != pairs[i].Name || string(v) != pairs[i].Value {
				t.Fatalf("pair %d changed on round trip", i)
			}
			i++
			return nil
		}); err != nil || i != len(pairs) {
			t.Fatalf("round trip: %d of %d pairs, %v", i, len(pairs), err)
		}
	})
}

// FuzzReader: the Reader never panics, consumes exactly what the headers
// announce, and headers survive an encode/decode round trip.
func FuzzReader(f *testing.F) {
	for _, tc := range streamTests {
		if len(tc.raw) < 4096 {
			f.Add(tc.raw)
		}
	}
	f.Add(cat(rec(TypeStdout, 1, "ab", 0, 'l'), rec(TypeStdout, 1, "cd", 255, 0xff)))
	f.Add(AppendBeginRequest(nil, 1, RoleResponder, true))
	f.Add([]byte{1, 6, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		cr := &countReader{r: bytes.NewReader(b)}
		r := NewReader(bufio.NewReaderSize(cr, 16))
		consumed := 0
		for {
			h, content, err := r.Next()
			if err != nil {
				if err == io.EOF && consumed != len(b) {
					t.Fatalf("clean EOF after %d of %d bytes", consumed, len(b))
				}
				return
			}
			if len(content) != int(h.ContentLength) {
				t.Fatalf("content %d bytes, header says %d", len(content), h.ContentLength)
			}
			consumed += HeaderLen + int(h.ContentLength) + int(h.PaddingLength)
			if h2, err := ParseHeader(h.Append(nil)); err != nil || h2 != h {
				t.Fatalf("header round trip: %+v -> %+v, %v", h, h2, err)
			}
		}
	})
}

type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
