package h1

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// record is what a handler saw of one request.
type record struct {
	Method, Path, RawPath, RawQuery, Host, RequestURI, Proto string
	Header                                                   http.Header
	ContentLength                                            int64
	TE                                                       []string
	Body                                                     string
}

// recorder answers 200 with the request as JSON, or 400 "bodyerr" when its
// body cannot be read whole.
var recorder = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "bodyerr")
		return
	}
	rec := record{r.Method, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Host, r.RequestURI, r.Proto,
		r.Header, r.ContentLength, r.TransferEncoding, string(b)}
	json.NewEncoder(w).Encode(rec)
})

// outcome classes each response of a connection: "ok <record>",
// "bodyerr" (the handler could not read the body), or "rejected" (4xx/5xx
// from the server itself). A connection that answers nothing is "none".
func outcome(b []byte, method string) string {
	rs, bodies := responses(b, method)
	if len(rs) == 0 {
		return "none"
	}
	var out []string
	for i, r := range rs {
		switch {
		case r.StatusCode == 200:
			out = append(out, "ok "+bodies[i])
		case bodies[i] == "bodyerr":
			out = append(out, "bodyerr")
		default:
			out = append(out, "rejected")
		}
	}
	return strings.Join(out, " | ")
}

// diffCase is one raw request (or several, pipelined). When h1 differs
// from net/http on purpose, want is h1's outcome class and why says why.
type diffCase struct {
	name, raw string
	want, why string
}

const hdrs = "Host: example.com\r\n"

var diffCorpus = []diffCase{
	// Good and odd.
	{name: "get", raw: "GET /a/b HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "get 1.0 no host", raw: "GET / HTTP/1.0\r\n\r\n"},
	{name: "1.0 keep-alive pipelined", raw: "GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n"},
	{name: "post cl", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Content-Length: 5\r\n\r\nhello"},
	{name: "post chunked", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"},
	{name: "chunked upper hex", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n"},
	{name: "chunked extensions", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\n5;a=b;c\r\nhello\r\n0;x=\"y\"\r\n\r\n"},
	{name: "chunked trailers", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n"},
	{name: "TE case", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: Chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"},
	{name: "TE padded", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding:   chunked  \r\n\r\n1\r\nx\r\n0\r\n\r\n"},
	{name: "query", raw: "GET /s?q=a+b&x=%20 HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "empty query", raw: "GET /s? HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "double question", raw: "GET /s??x HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "escaped slash", raw: "GET /a%2Fb HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "escaped nul", raw: "GET /a%00b HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "bad escape", raw: "GET /a%zz HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "dot segments", raw: "GET /a/../../etc/passwd HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "path needs escaping", raw: "GET /a!b(c)*'\"<>|^` HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "fragment", raw: "GET /a#frag HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "double slash", raw: "GET //x/y HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "raw utf8 path", raw: "GET /caf\xc3\xa9 HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "absolute-form", raw: "GET http://a.example:8080/p?q=1 HTTP/1.1\r\nHost: b.example\r\n\r\n"},
	{name: "absolute-form no host field", raw: "GET http://a.example/p HTTP/1.1\r\n\r\n"},
	{name: "options asterisk", raw: "OPTIONS * HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "cl twice same", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"},
	{name: "cl leading zeros", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Content-Length: 003\r\n\r\nabc"},
	{name: "underscore header", raw: "GET / HTTP/1.1\r\n" + hdrs + "X_Forwarded_For: 1.2.3.4\r\n\r\n"},
	{name: "header case", raw: "GET / HTTP/1.1\r\n" + hdrs + "x-FOO-bAr: 1\r\ncontent-type: text/plain\r\n\r\n"},
	{name: "header repeated", raw: "GET / HTTP/1.1\r\n" + hdrs + "Accept: a\r\nAccept: b\r\nCookie: x=1\r\nCookie: y=2\r\n\r\n"},
	{name: "utf8 value", raw: "GET / HTTP/1.1\r\n" + hdrs + "X-Name: caf\xc3\xa9\r\n\r\n"},
	{name: "latin1 value", raw: "GET / HTTP/1.1\r\n" + hdrs + "X-Name: caf\xe9\r\n\r\n"},
	{name: "empty value", raw: "GET / HTTP/1.1\r\n" + hdrs + "X-Empty:\r\nX-Spaces:   \r\n\r\n"},
	{name: "tabs around value", raw: "GET / HTTP/1.1\r\n" + hdrs + "X-T:\t v \t\r\n\r\n"},
	{name: "host port", raw: "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"},
	{name: "host ipv6", raw: "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"},
	{name: "host empty", raw: "GET / HTTP/1.1\r\nHost:\r\n\r\n"},
	{name: "pragma", raw: "GET / HTTP/1.1\r\n" + hdrs + "Pragma: no-cache\r\n\r\n"},
	{name: "lowercase method", raw: "get / HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "extension method", raw: "PURGE /x HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "pipelined gets", raw: "GET /1 HTTP/1.1\r\n" + hdrs + "\r\nGET /2 HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "pipelined post get", raw: "POST /1 HTTP/1.1\r\n" + hdrs + "Content-Length: 2\r\n\r\nabGET /2 HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "connection close", raw: "GET /1 HTTP/1.1\r\n" + hdrs + "Connection: close\r\n\r\nGET /2 HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "expect continue", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Expect: 100-continue\r\nContent-Length: 2\r\n\r\nok"},
	{name: "expect continue 1.0", raw: "POST /p HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok"},
	{name: "expect other", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Expect: foo\r\nContent-Length: 2\r\n\r\nok"},
	{name: "big header under limit", raw: "GET / HTTP/1.1\r\n" + hdrs + "X-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n"},
	{name: "200 headers", raw: "GET / HTTP/1.1\r\n" + hdrs + strings.Repeat("X-Many: v\r\n", 200) + "\r\n"},
	{name: "fragment of a target with hash in query", raw: "GET /a?b#c HTTP/1.1\r\n" + hdrs + "\r\n"},

	// Smuggling and other hostile framing.
	{name: "CL.TE", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
		want: "rejected", why: "CL+TE: 400 as nginx (RFC 9112 §6.1); net/http reads by TE and keeps the connection"},
	{name: "TE.CL", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1\r\nx\r\n0\r\n\r\n",
		want: "rejected", why: "CL+TE, the other order"},
	{name: "TE chunked identity", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked, identity\r\n\r\n1\r\nx\r\n0\r\n\r\n"},
	{name: "TE xchunked", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: xchunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"},
	{name: "TE twice", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"},
	{name: "TE.TE obfuscated", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n1\r\nx\r\n0\r\n\r\n"},
	{name: "TE gzip chunked", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: gzip, chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"},
	{name: "TE vertical tab", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: \x0bchunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"},
	{name: "TE space before colon", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc"},
	{name: "TE on 1.0", raw: "POST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
		want: "rejected", why: "RFC 9112 §6.1: TE in 1.0 is faulty framing; net/http ignores the field (Go issue 12785)"},
	{name: "CL differ", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
	{name: "CL plus", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Content-Length: +3\r\n\r\nabc"},
	{name: "CL minus", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Content-Length: -1\r\n\r\nabc"},
	{name: "CL list", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Content-Length: 3, 3\r\n\r\nabc"},
	{name: "CL hex", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Content-Length: 0x3\r\n\r\nabc"},
	{name: "CL huge", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Content-Length: 99999999999999999999\r\n\r\nabc"},
	{name: "CL empty", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Content-Length:\r\n\r\n"},
	{name: "CL short body", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Content-Length: 10\r\n\r\nabc"},
	{name: "chunk size overflow", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nx\r\n0\r\n\r\n"},
	{name: "chunk size 16 f", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nx\r\n0\r\n\r\n"},
	{name: "chunk size bad hex", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\nzz\r\nx\r\n0\r\n\r\n"},
	{name: "chunk size 0x", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\n0x1\r\nx\r\n0\r\n\r\n"},
	{name: "chunk size negative", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n"},
	{name: "chunk size bare LF", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n"},
	{name: "chunk data bare LF", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\n1\r\nx\n0\r\n\r\n"},
	{name: "chunk data too long", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n"},
	{name: "chunk missing final CRLF", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n"},
	{name: "chunk missing last chunk", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n"},
	{name: "chunk extension 1MiB", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\n1;" + strings.Repeat("a", 1<<20) + "\r\nx\r\n0\r\n\r\n"},
	{name: "chunk tiny with extensions", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\n" + strings.Repeat("1;"+strings.Repeat("e", 100)+"\r\nx\r\n", 400) + "0\r\n\r\n"},
	{name: "chunk size space", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n"},
	{name: "trailer obs-fold", raw: "POST /p HTTP/1.1\r\n" + hdrs + "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nX-A: 1\r\n folded\r\n\r\n",
		want: "bodyerr", why: "obs-fold refused in trailers as in the head; net/http unfolds it"},
	{name: "space before colon", raw: "GET / HTTP/1.1\r\nHost : example.com\r\n\r\n"},
	{name: "obs-fold", raw: "GET / HTTP/1.1\r\n" + hdrs + "X-A: 1\r\n  folded\r\n\r\n",
		want: "rejected", why: "RFC 9112 §5.2 allows rejecting obs-fold; net/http unfolds it"},
	{name: "obs-fold first line", raw: "GET / HTTP/1.1\r\n folded\r\n" + hdrs + "\r\n"},
	{name: "bare LF head", raw: "GET / HTTP/1.1\n" + hdrs[:len(hdrs)-2] + "\n\n",
		want: "rejected", why: "bare LF line endings refused (RFC 9112 §2.2 makes accepting them optional); net/http accepts"},
	{name: "bare LF one line", raw: "GET / HTTP/1.1\r\n" + hdrs + "X-A: 1\n\r\n",
		want: "rejected", why: "bare LF refused"},
	{name: "NUL in value", raw: "GET / HTTP/1.1\r\n" + hdrs + "X-A: a\x00b\r\n\r\n"},
	{name: "CR in value", raw: "GET / HTTP/1.1\r\n" + hdrs + "X-A: a\rb\r\n\r\n"},
	{name: "DEL in value", raw: "GET / HTTP/1.1\r\n" + hdrs + "X-A: a\x7fb\r\n\r\n"},
	{name: "two hosts", raw: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
	{name: "no host 1.1", raw: "GET / HTTP/1.1\r\n\r\n"},
	{name: "host with space", raw: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n"},
	{name: "host with slash", raw: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"},
	{name: "http/1.2", raw: "GET / HTTP/1.2\r\n" + hdrs + "\r\n",
		want: "rejected", why: "505 for any version but 1.0 and 1.1; net/http serves 1.x as 1.1"},
	{name: "http/2.0", raw: "GET / HTTP/2.0\r\n" + hdrs + "\r\n"},
	{name: "http/0.9", raw: "GET /\r\n\r\n"},
	{name: "lowercase version", raw: "GET / http/1.1\r\n" + hdrs + "\r\n"},
	{name: "two spaces", raw: "GET  / HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "trailing space", raw: "GET / HTTP/1.1 \r\n" + hdrs + "\r\n"},
	{name: "tab separators", raw: "GET\t/\tHTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "bad method", raw: "GE(T / HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "control in target", raw: "GET /a\x01b HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "connect", raw: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
		want: "rejected", why: "gw is no forward proxy: 501 (nginx: 405); net/http hands CONNECT to the handler"},
	{name: "get asterisk", raw: "GET * HTTP/1.1\r\n" + hdrs + "\r\n",
		want: "rejected", why: "asterisk-form is for OPTIONS only (RFC 9112 §3.2.4); net/http takes it for any method"},
	{name: "opaque target", raw: "GET mailto:x HTTP/1.1\r\n" + hdrs + "\r\n",
		want: "rejected", why: "absolute-form needs an authority (RFC 9112 §3.2.2)"},
	{name: "relative target", raw: "GET a/b HTTP/1.1\r\n" + hdrs + "\r\n"},
	{name: "header too large", raw: "GET / HTTP/1.1\r\n" + hdrs + "X-Big: " + strings.Repeat("a", 40<<10) + "\r\n\r\n"},
	{name: "bad header name", raw: "GET / HTTP/1.1\r\n" + hdrs + "X@Y: 1\r\n\r\n"},
	{name: "empty header name", raw: "GET / HTTP/1.1\r\n" + hdrs + ": 1\r\n\r\n"},
	{name: "no colon", raw: "GET / HTTP/1.1\r\n" + hdrs + "X-A 1\r\n\r\n"},
	{name: "pipelined bad second", raw: "GET /1 HTTP/1.1\r\n" + hdrs + "\r\nGET /2 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
	{name: "leading CRLF", raw: "\r\nGET / HTTP/1.1\r\n" + hdrs + "\r\n",
		want: "ok", why: "RFC 9112 §2.2: a server SHOULD ignore empty lines before the request-line; net/http refuses"},
}

// TestDifferential feeds each raw request of the corpus to net/http's
// server and to h1 and compares what the handler saw, or that both
// refused. Differences must be the documented, deliberate ones.
func TestDifferential(t *testing.T) {
	if len(diffCorpus) < 60 {
		t.Fatalf("corpus has %d cases, want at least 60", len(diffCorpus))
	}
	const limit = 32 << 10
	h1Addr := serve(t, &Server{MaxHeaderBytes: limit}, recorder)
	stdAddr := serveStd(t, &http.Server{MaxHeaderBytes: limit - 4096}, recorder)
	names := map[string]bool{}
	for _, tc := range diffCorpus {
		if names[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		names[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			method, _, _ := strings.Cut(strings.TrimLeft(tc.raw, "\r\n"), " ")
			got := outcome(exchange(t, h1Addr, tc.raw), method)
			std := outcome(exchange(t, stdAddr, tc.raw), method)
			if tc.want == "" {
				if got != std {
					t.Errorf("h1 and net/http differ:\n h1:       %s\n net/http: %s", got, std)
				}
				return
			}
			if cls, _, _ := strings.Cut(got, " "); cls != tc.want {
				t.Errorf("h1: %s, want %s (%s)", got, tc.want, tc.why)
			}
			if got == std {
				t.Errorf("documented difference (%s) gone: both %s", tc.why, got)
			}
		})
	}
}

// TestDifferentialCorpusNames keeps the case list printable for the
// design record.
func TestDifferentialCorpusNames(t *testing.T) {
	var deliberate []string
	for _, tc := range diffCorpus {
		if tc.want != "" {
			deliberate = append(deliberate, fmt.Sprintf("%s: %s", tc.name, tc.why))
		}
	}
	slices.Sort(deliberate)
	t.Logf("%d cases, %d deliberate differences:\n%s", len(diffCorpus), len(deliberate), strings.Join(deliberate, "\n"))
}
