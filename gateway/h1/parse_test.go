package h1

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// parseRequest runs the head parser and the request builder on a complete
// head, as the connection does.
func parseRequest(raw string) (*http.Request, framing, error) {
	b := []byte(raw)
	end, _ := headEnd(b, 0)
	if end < 0 {
		return nil, framing{}, errors.New("incomplete head")
	}
	var h head
	if err := parseHead(b[:end], &h); err != nil {
		return nil, framing{}, err
	}
	r, u := new(http.Request), new(url.URL)
	fr, _, err := build(&h, string(b[:end]), r, u, http.Header{}, nil)
	return r, fr, err
}

func statusOf(err error) int {
	var se *statusError
	if errors.As(err, &se) {
		return se.code
	}
	if err != nil {
		return -1
	}
	return 200
}

func TestParseRequest(t *testing.T) {
	for i, tc := range []struct {
		raw    string
		status int
		check  func(*http.Request, framing) string
	}{
		{"GET /a?b=c HTTP/1.1\r\nHost: x\r\nx-lower-case: v\r\n\r\n", 200, func(r *http.Request, fr framing) string {
			switch {
			case r.Method != "GET" || r.URL.Path != "/a" || r.URL.RawQuery != "b=c" || r.Host != "x":
				return "request line"
			case r.Header.Get("X-Lower-Case") != "v" || r.Header["Host"] != nil:
				return "header"
			case !fr.keepAlive || fr.length != 0 || r.Body != http.NoBody:
				return "framing"
			}
			return ""
		}},
		{"POST / HTTP/1.0\r\nContent-Length: 7\r\n\r\n", 200, func(r *http.Request, fr framing) string {
			if fr.keepAlive || r.ContentLength != 7 || fr.length != 7 || r.Proto != "HTTP/1.0" {
				return "1.0 framing"
			}
			return ""
		}},
		{"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 200, func(r *http.Request, fr framing) string {
			if !fr.keepAlive {
				return "1.0 keep-alive"
			}
			return ""
		}},
		{"GET / HTTP/1.1\r\nHost: x\r\nConnection: te, close\r\n\r\n", 200, func(r *http.Request, fr framing) string {
			if fr.keepAlive || !r.Close {
				return "close token"
			}
			return ""
		}},
		{"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-Continue\r\n\r\n", 200, func(r *http.Request, fr framing) string {
			if !fr.chunked || !fr.expect || r.ContentLength != -1 || r.Header["Transfer-Encoding"] != nil || len(r.TransferEncoding) != 1 {
				return "chunked + expect"
			}
			return ""
		}},
		{"GET http://h.example/p HTTP/1.1\r\nHost: other\r\n\r\n", 200, func(r *http.Request, fr framing) string {
			if r.Host != "h.example" || r.URL.Path != "/p" {
				return "absolute-form"
			}
			return ""
		}},
		{"GET /%41b HTTP/1.1\r\nHost: x\r\n\r\n", 200, func(r *http.Request, fr framing) string {
			if r.URL.Path != "/Ab" || r.RequestURI != "/%41b" {
				return "escapes"
			}
			return ""
		}},
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 200, nil},
		{"GET / HTTP/1.1\r\n\r\n", 400, nil},                          // no Host on 1.1
		{"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, nil},    // two Hosts, even equal
		{"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400, nil}, // obs-fold
		{"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, nil},              // space before colon
		{"GET / HTTP/1.1\r\nHost: x\r\nX: \x00\r\n\r\n", 400, nil},    // NUL
		{"GET / HTTP/1.1\nHost: x\n\n", 400, nil},                     // bare LF
		{"GET / HTTP/1.1\r\nHost: x\r\nX: 1\n\r\n", 400, nil},         // bare LF in a field
		{"GET / HTTP/1.3\r\nHost: x\r\n\r\n", 505, nil},               // version
		{"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, nil},               // version
		{"GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400, nil},              // malformed version
		{"GET / FTP/1.1\r\nHost: x\r\n\r\n", 400, nil},                // not HTTP
		{"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, nil},               // method token
		{"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400, nil},            // space in target
		{" GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400, nil},              // leading space
		{"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501, nil},   // no proxying
		{"DELETE * HTTP/1.1\r\nHost: x\r\n\r\n", 400, nil},            // asterisk not for DELETE
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, nil},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n", 400, nil},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775808\r\n\r\n", 400, nil},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, nil},
		{"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, nil},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, nil},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400, nil},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, nil},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", 400, nil},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,\r\n\r\n", 400, nil},
		{"POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 417, nil},
	} {
		r, fr, err := parseRequest(tc.raw)
		if got := statusOf(err); got != tc.status {
			t.Errorf("%d: %q: status %d (%v), want %d", i, tc.raw, got, err, tc.status)
			continue
		}
		if tc.check != nil {
			if what := tc.check(r, fr); what != "" {
				t.Errorf("%d: %q: wrong %s: %+v %+v", i, tc.raw, what, r, fr)
			}
		}
	}
}

func TestHeadEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"GET / HTTP/1.1\r\n\r\n", 18},
		{"GET / HTTP/1.1\r\nA: b\r\n\r\nrest", 24},
		{"GET / HTTP/1.1\r\nA: b\r\n", -1},
		{"GET / HTTP/1.1\r\nA: b\r\n\r", -1},
		{"GET / HTTP/1.1\n\n", 16},
	} {
		// Fed a byte at a time with resume, and whole: the same answer.
		end, resume := -1, 0
		for n := 1; n <= len(tc.in) && end < 0; n++ {
			end, resume = headEnd([]byte(tc.in[:n]), resume)
		}
		whole, _ := headEnd([]byte(tc.in), 0)
		if end != tc.want || whole != tc.want {
			t.Errorf("headEnd(%q) = %d incrementally, %d whole; want %d", tc.in, end, whole, tc.want)
		}
	}
}

// TestTargetFastPath checks the allocation-free origin-form parse agrees
// with url.ParseRequestURI.
func TestTargetFastPath(t *testing.T) {
	for _, target := range []string{"/", "/a/b", "/a?b", "/a?", "/a??", "/a?b?c", "//x", "/a#b", "/a b",
		"/a!b", "/caf\xc3\xa9", "/a;b=c", "/~u/$&+,:;=@", "/a?q=%zz", "/x\"y"} {
		var u url.URL
		if err := parseTarget(target, "GET", &u); err != nil {
			t.Errorf("%q: %v", target, err)
			continue
		}
		want, err := url.ParseRequestURI(target)
		if err != nil {
			t.Errorf("%q: url: %v", target, err)
			continue
		}
		if !reflect.DeepEqual(&u, want) {
			t.Errorf("%q: got %#v, want %#v", target, u, *want)
		}
	}
}

// FuzzParseRequest: any bytes either parse into a request that net/http's
// own parser reads the same way, or are refused with a status; never a
// panic. (net/http's parser is more lenient, so only acceptance is
// compared.)
func FuzzParseRequest(f *testing.F) {
	for _, tc := range diffCorpus {
		f.Add([]byte(tc.raw))
	}
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > 64<<10 {
			return
		}
		r, fr, err := parseRequest(string(raw))
		if err != nil {
			if s := statusOf(err); s != -1 && (s < 400 || s > 505) {
				t.Fatalf("refused with status %d", s)
			}
			return
		}
		std, err := http.ReadRequest(bufioReader(raw))
		if err != nil {
			t.Fatalf("h1 accepted what net/http refuses (%v): %q", err, raw)
		}
		if std.Method != r.Method || std.URL.String() != r.URL.String() || std.Host != r.Host {
			t.Fatalf("h1 read %s %s host %q, net/http %s %s host %q", r.Method, r.URL, r.Host, std.Method, std.URL, std.Host)
		}
		if !fr.chunked && std.ContentLength != fr.length {
			t.Fatalf("Content-Length %d, net/http %d", fr.length, std.ContentLength)
		}
		for k, vv := range r.Header {
			if strings.Join(std.Header[k], "\x00") != strings.Join(vv, "\x00") {
				t.Fatalf("header %s: %q, net/http %q", k, vv, std.Header[k])
			}
		}
	})
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
