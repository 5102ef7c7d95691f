package framing

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"
)

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		code int
		ok   bool
	}{{200, true}, {204, true}, {599, true}, {999, true}, {100, false}, {101, false}, {103, false}, {199, false}, {0, false}, {1000, false}} {
		if err := Status(tc.code); (err == nil) != tc.ok {
			t.Errorf("Status(%d) = %v, want ok=%v", tc.code, err, tc.ok)
		}
	}
}

func TestField(t *testing.T) {
	for i, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"X-A", "b c\td", true},
		{"X-A", "caf\xe9", true}, // obs-text is allowed
		{"X-A", "a\x00b", false},
		{"X-A", "a\rb", false},
		{"X-A", "a\nX-Injected: 1", false},
		{"X A", "b", false},
		{"X:A", "b", false},
		{"", "b", false},
		{"X-\x00", "b", false},
	} {
		if err := Field(tc.name, tc.value); (err == nil) != tc.ok {
			t.Errorf("%d: Field(%q, %q) = %v, want ok=%v", i, tc.name, tc.value, err, tc.ok)
		}
		if err := Field([]byte(tc.name), []byte(tc.value)); (err == nil) != tc.ok {
			t.Errorf("%d: Field([]byte) disagrees", i)
		}
	}
}

// send runs a whole response through Head and Body the way a runner does,
// writing body in pieces of at most split bytes.
func send(t *testing.T, method string, status int, header http.Header, dechunk bool, body string, split int) (*httptest.ResponseRecorder, error, error) {
	t.Helper()
	rec := httptest.NewRecorder()
	for k, vv := range header {
		rec.Header()[k] = vv
	}
	bv, herr := Head(rec, method, status, dechunk)
	b := &bv
	if herr != nil {
		return rec, herr, nil
	}
	rec.WriteHeader(status)
	for p := []byte(body); len(p) > 0; {
		n := min(split, len(p))
		if _, err := b.Write(p[:n]); err != nil {
			t.Fatalf("write: %v", err)
		}
		p = p[n:]
	}
	return rec, nil, b.Close()
}

func TestBody(t *testing.T) {
	chunked := http.Header{"Transfer-Encoding": {"chunked"}}
	for _, tc := range []struct {
		name    string
		method  string
		status  int
		header  http.Header
		dechunk bool
		body    string
		want    string // body the client gets
		headErr string // substring; "" = no error
		bodyErr string
	}{
		{"plain", "GET", 200, nil, true, "hello", "hello", "", ""},
		{"exact", "GET", 200, http.Header{"Content-Length": {"5"}}, true, "hello", "hello", "", ""},
		{"long", "GET", 200, http.Header{"Content-Length": {"3"}}, true, "hello", "hel", "", "longer than its Content-Length 3"},
		{"short", "GET", 200, http.Header{"Content-Length": {"9"}}, true, "hello", "hello", "", "shorter than its Content-Length 9"},
		{"head ignores length", "HEAD", 200, http.Header{"Content-Length": {"9"}}, true, "", "", "", ""},
		{"head drops body", "HEAD", 200, nil, true, "hello", "", "", ""},
		{"head of a chunked body", "HEAD", 200, chunked, true, "", "", "", ""},
		{"304 keeps length", "GET", 304, http.Header{"Content-Length": {"9"}}, true, "", "", "", ""},
		{"same lengths", "GET", 200, http.Header{"Content-Length": {"5", "5"}}, true, "hello", "hello", "", ""},
		{"two lengths", "GET", 200, http.Header{"Content-Length": {"5", "6"}}, true, "", "", "conflicting", ""},
		{"bad length", "GET", 200, http.Header{"Content-Length": {"five"}}, true, "", "", "invalid response Content-Length", ""},
		{"signed length", "GET", 200, http.Header{"Content-Length": {"+5"}}, true, "", "", "invalid response Content-Length", ""},
		{"dechunk", "GET", 200, chunked, true, "5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-T: 1\r\n\r\n", "hello world", "", ""},
		{"dechunk LF", "GET", 200, chunked, true, "5\nhello\n0\n\n", "hello", "", ""},
		{"chunked kept for plugins", "GET", 200, chunked, false, "hello", "hello", "", ""},
		{"unfinished chunks", "GET", 200, chunked, true, "5\r\nhello\r\n", "hello", "", "before its last chunk"},
		{"bad chunk size", "GET", 200, chunked, true, "5z\r\nhello", "", "", "invalid chunk size"},
		{"chunk overrun", "GET", 200, chunked, true, "2\r\nhello\r\n0\r\n\r\n", "he", "", "longer than its size"},
		{"after last chunk", "GET", 200, chunked, true, "0\r\n\r\nextra", "", "", "after the last chunk"},
		{"TE and CL", "GET", 200, http.Header{"Transfer-Encoding": {"chunked"}, "Content-Length": {"5"}}, true, "", "", "both", ""},
		{"gzip TE", "GET", 200, http.Header{"Transfer-Encoding": {"gzip, chunked"}}, true, "", "", "unsupported", ""},
		{"identity TE", "GET", 200, http.Header{"Transfer-Encoding": {"identity"}}, true, "hello", "hello", "", ""},
		{"101", "GET", 101, nil, true, "", "", "final status", ""},
		{"103", "GET", 103, nil, true, "", "", "final status", ""},
		{"NUL value", "GET", 200, http.Header{"X-A": {"a\x00b"}}, true, "", "", "NUL", ""},
	} {
		for _, split := range []int{1, 3, 1 << 20} {
			rec, herr, berr := send(t, tc.method, tc.status, tc.header.Clone(), tc.dechunk, tc.body, split)
			if !errMatches(herr, tc.headErr) || !errMatches(berr, tc.bodyErr) {
				t.Errorf("%s/%d: head error %v, body error %v; want %q, %q", tc.name, split, herr, berr, tc.headErr, tc.bodyErr)
				continue
			}
			if herr != nil {
				continue
			}
			if got := rec.Body.String(); got != tc.want {
				t.Errorf("%s/%d: client got %q, want %q", tc.name, split, got, tc.want)
			}
			if tc.dechunk && rec.Header().Get("Transfer-Encoding") != "" {
				t.Errorf("%s: Transfer-Encoding reached the client", tc.name)
			}
			var fe *Error
			if berr != nil && !errors.As(berr, &fe) {
				t.Errorf("%s: %T is not a *framing.Error", tc.name, berr)
			}
		}
	}
}

func errMatches(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && strings.Contains(err.Error(), want)
}

// FuzzDecoder: whatever Go's chunked writer frames, split anywhere, the
// decoder gives back the same bytes and sees the end.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte("hello world"), uint8(3), uint8(1))
	f.Add(bytes.Repeat([]byte{0xff}, 70000), uint8(200), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, writes, split uint8) {
		var framed bytes.Buffer
		cw := httputil.NewChunkedWriter(&framed)
		step := len(data)/(int(writes)+1) + 1
		for p := data; len(p) > 0; p = p[min(step, len(p)):] {
			cw.Write(p[:min(step, len(p))])
		}
		cw.Close()
		framed.WriteString("\r\n")
		var d decoder
		var out bytes.Buffer
		in := framed.Bytes()
		n := int(split) + 1
		for len(in) > 0 {
			k := min(n, len(in))
			d.feed(in[:k], func(b []byte) error { out.Write(b); return nil })
			in = in[k:]
		}
		if d.err != nil || !d.done() || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("err %v done %v, %d bytes back of %d", d.err, d.done(), out.Len(), len(data))
		}
	})
}

// errWriter is a client that went away.
type errWriter struct{ http.ResponseWriter }

func (errWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestBodyReturnsClientErrors(t *testing.T) {
	w := errWriter{httptest.NewRecorder()}
	w.Header()["Transfer-Encoding"] = []string{"chunked"}
	b, err := Head(w, "GET", 200, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&b).Write([]byte("5\r\nhello\r\n")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Write = %v, want the client's error", err)
	}
}
