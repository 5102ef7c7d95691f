package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http/httputil"
	"strings"
	"testing"
	"testing/iotest"
)

// decode runs the chunked decoder over in, through a reader that hands
// out one byte at a time when slow is set (every split of the framing).
func decode(in string, slow bool) (string, error) {
	var src io.Reader = strings.NewReader(in)
	if slow {
		src = iotest.OneByteReader(src)
	}
	r := &reader{src: src, buf: make([]byte, 64)}
	var c chunked
	c.reset(r, 1<<10)
	b, err := io.ReadAll(&c)
	return string(b), err
}

func TestChunked(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"5\r\nhello\r\n0\r\n\r\n", "hello", nil},
		{"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", nil},
		{"a\r\n0123456789\r\n0\r\n\r\n", "0123456789", nil},
		{"5;ext=1;x\r\nhello\r\n0;y\r\n\r\n", "hello", nil},
		{"5 \t;ext\r\nhello\r\n0\r\n\r\n", "hello", nil},
		{"5\r\nhello\r\n0\r\nA: b\r\nC: d\r\n\r\n", "hello", nil},
		{"0\r\n\r\n", "", nil},
		{"000000000000000000005\r\nhello\r\n0\r\n\r\n", "", errChunkTooBig}, // more than 16 digits
		{"ffffffffffffffffff\r\nx", "", errChunkTooBig},
		{"8000000000000000\r\nx", "", errChunkTooBig}, // past int64
		{"zz\r\n", "", errChunkSize},
		{"\r\nhello\r\n", "", errChunkSize},
		{"0x5\r\nhello\r\n0\r\n\r\n", "", errChunkSize},
		{"-5\r\nhello\r\n", "", errChunkSize},
		{"5\nhello\r\n0\r\n\r\n", "", errChunkSize},                    // bare LF
		{"5\r\nhello\n0\r\n\r\n", "hello", errChunkSize},               // bare LF after data
		{"5\r\nhelloX\r\n0\r\n\r\n", "hello", errChunkCRLF},            // data longer than its size
		{"5;a\x00b\r\nhello\r\n0\r\n\r\n", "", errChunkSize},           // control byte in extension
		{"5\r\nhello\r\n0\r\n", "hello", io.ErrUnexpectedEOF},          // no end of trailers
		{"5\r\nhel", "hel", io.ErrUnexpectedEOF},                       // cut in data
		{"5\r\nhello\r\n0\r\nA b\r\n\r\n", "hello", errTrailer},        // malformed trailer
		{"5\r\nhello\r\n0\r\nA: 1\r\n b\r\n\r\n", "hello", errTrailer}, // obs-fold in trailer
		{"1;" + strings.Repeat("e", 5000) + "\r\nx\r\n0\r\n\r\n", "", errChunkExcess},
		{strings.Repeat("1;"+strings.Repeat("e", 200)+"\r\nx\r\n", 200) + "0\r\n\r\n", strings.Repeat("x", 80), errChunkExcess},
		{"0\r\nA: " + strings.Repeat("v", 2000) + "\r\n\r\n", "", errTrailerLarge},
	} {
		for _, slow := range []bool{false, true} {
			got, err := decode(tc.in, slow)
			if err != tc.err || (err == nil && got != tc.want) {
				t.Errorf("decode(%.40q, slow=%v) = %.20q, %v; want %.20q, %v", tc.in, slow, got, err, tc.want, tc.err)
			}
		}
	}
}

// TestChunkedEOFWithLastData: when the end of the body is buffered, the
// read that returns the last bytes returns io.EOF too (as net/http's
// does), so the connection can be watched without a read that finds
// nothing.
func TestChunkedEOFWithLastData(t *testing.T) {
	r := &reader{src: strings.NewReader("5\r\nhello\r\n0\r\n\r\nNEXT"), buf: make([]byte, 64)}
	var c chunked
	c.reset(r, 1<<10)
	p := make([]byte, 10)
	n, err := c.Read(p)
	if n != 5 || err != io.EOF {
		t.Fatalf("Read = %d, %v; want 5, EOF", n, err)
	}
	if rest := string(r.buf[r.r:r.w]); rest != "NEXT" {
		t.Fatalf("left %q in the buffer, want the next request's bytes", rest)
	}
}

// FuzzChunked: the decoder never panics, and whatever it decodes net/http's
// decoder decodes the same.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{"5\r\nhello\r\n0\r\n\r\n", "5;a=b\r\nhello\r\n0\r\nT: v\r\n\r\n", "ffffffffffffffffff\r\n",
		"1\nx\r\n0\r\n\r\n", "0\r\n\r\n", "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, slow bool) {
		got, err := decode(string(in), slow)
		if err != nil {
			return
		}
		std, stdErr := io.ReadAll(httputil.NewChunkedReader(bufio.NewReader(bytes.NewReader(in))))
		if stdErr != nil {
			// net/http's decoder stops after the last chunk: the
			// trailers are its caller's. It must agree on the data.
			if !bytes.HasPrefix([]byte(got), std) {
				t.Fatalf("h1 decoded %q, net/http %q then %v", got, std, stdErr)
			}
			return
		}
		if got != string(std) {
			t.Fatalf("h1 decoded %q, net/http %q", got, std)
		}
	})
}
