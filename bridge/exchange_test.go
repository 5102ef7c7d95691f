package bridge

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/cgi"
	"github.com/gwhq/gw/internal/framing"
	"github.com/gwhq/gw/proto/bridgepb"
)

// TestCopyHeadDropsHopByHop: the front end owns the client connection, so
// an app's Connection, Transfer-Encoding, Keep-Alive... never reach it.
func TestCopyHeadDropsHopByHop(t *testing.T) {
	frame, err := AppendMessage(nil, ResponseHead, &bridgepb.ResponseHead{Status: 201, Headers: bs(
		"content-type", "text/plain",
		"Set-Cookie", "a=1", "set-cookie", "b=2",
		"Connection", "close", "Transfer-Encoding", "chunked", "Keep-Alive", "timeout=5",
		"Upgrade", "h2c", "TE", "trailers", "Trailer", "X-T",
		"X-Kept", "yes",
	)})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h := w.Header()
	status, err := copyHead(h, frame[HeaderSize:])
	if err != nil || status != 201 {
		t.Fatalf("status %d err %v", status, err)
	}
	// Transfer-Encoding is framing.Head's to act on and remove.
	if _, err := framing.Head(w, "GET", status, true); err != nil {
		t.Fatal(err)
	}
	want := http.Header{"Content-Type": {"text/plain"}, "Set-Cookie": {"a=1", "b=2"}, "X-Kept": {"yes"}}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("headers %v, want %v", h, want)
	}
}

func TestDecodeResponseHeadRejectsOddHeaders(t *testing.T) {
	frame, _ := AppendMessage(nil, ResponseHead, &bridgepb.ResponseHead{Status: 200, Headers: bs("X-Lonely")})
	if _, err := DecodeResponseHead(frame[HeaderSize:], func(n, v []byte) {}); err == nil {
		t.Fatal("a header name without a value was accepted")
	}
}

// TestCommonHeadersCanonical: the allocation-free lookup gives exactly
// what canonicalizing would.
func TestCommonHeadersCanonical(t *testing.T) {
	for name, k := range commonHeaders {
		if want := textproto.CanonicalMIMEHeaderKey(name); k != want {
			t.Errorf("%q maps to %q, want %q", name, k, want)
		}
	}
}

// exchange runs one request through a slot whose runner answers with the
// given frames, and returns what the client got and the error.
func exchange(t *testing.T, method string, answer []byte) (*httptest.ResponseRecorder, Result, error) {
	t.Helper()
	gwSide, runnerSide, err := unixPair()
	if err != nil {
		t.Fatal(err)
	}
	defer gwSide.Close()
	defer runnerSide.Close()
	go func() { // the fake runner: read the request to REQUEST_END, answer
		rd := NewReader(bufio.NewReader(runnerSide))
		for {
			typ, n, err := rd.Header()
			if err != nil || rd.Discard(n) != nil {
				return
			}
			if typ == RequestEnd {
				runnerSide.Write(answer)
				return
			}
		}
	}()
	head := BeginHead(nil)
	r := httptest.NewRequest(method, "/", nil)
	cgi.Build(&head, r, cgi.Mount{})
	w := httptest.NewRecorder()
	res, err := NewSlot(gwSide, gwSide).Exchange(w, r, head.Finish("http", ""), nil)
	return w, res, err
}

// answer builds a runner's response: a head with headers, body frames, and
// RESPONSE_END (with error msg if not empty).
func answer(t *testing.T, status uint32, headers []string, body []string, msg string) []byte {
	t.Helper()
	b, err := AppendMessage(nil, ResponseHead, &bridgepb.ResponseHead{Status: status, Headers: bs(headers...)})
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range body {
		b = AppendFrame(b, ResponseBody, []byte(chunk))
	}
	end, err := AppendMessage(nil, ResponseEnd, &bridgepb.ResponseEnd{Error: msg})
	if err != nil {
		t.Fatal(err)
	}
	return append(b, end...)
}

// TestExchangeFraming: what an app's head and body may be, as the gateway
// enforces it for every bridge runner. Before, a 1xx went out as is
// (net/http then made up a 200), a self-chunked body reached the client
// chunked twice, and a body longer than its Content-Length was refused
// whole by net/http with nothing logged.
func TestExchangeFraming(t *testing.T) {
	for _, tc := range []struct {
		name    string
		method  string
		status  uint32
		headers []string
		body    []string
		want    string // body the client got
		wantErr string // "" for none
		sent    bool   // the head went out
	}{
		{"ok", "GET", 200, []string{"Content-Length", "5"}, []string{"hel", "lo"}, "hello", "", true},
		{"101", "GET", 101, nil, []string{"x"}, "", "final status", false},
		{"100", "GET", 100, nil, nil, "", "final status", false},
		{"CR in value", "GET", 200, []string{"X-A", "a\rb"}, nil, "", "NUL, CR or LF", false},
		{"self-chunked", "GET", 200, []string{"Transfer-Encoding", "chunked"}, []string{"5\r\nhel", "lo\r\n0\r\n\r\n"}, "hello", "", true},
		{"long", "GET", 200, []string{"Content-Length", "3"}, []string{"hello"}, "hel", "longer than its Content-Length", true},
		{"short", "GET", 200, []string{"Content-Length", "9"}, []string{"hello"}, "hello", "shorter than its Content-Length", true},
		{"HEAD", "HEAD", 200, []string{"Content-Length", "9"}, nil, "", "", true},
	} {
		w, res, err := exchange(t, tc.method, answer(t, tc.status, tc.headers, tc.body, ""))
		if !errMatches(err, tc.wantErr) || res.HeadSent != tc.sent {
			t.Errorf("%s: err %v head sent %v, want %q, %v", tc.name, err, res.HeadSent, tc.wantErr, tc.sent)
			continue
		}
		var ae *AppError
		if err != nil && !errors.As(err, &ae) {
			t.Errorf("%s: %T, want an *AppError (the runner is fine)", tc.name, err)
		}
		if tc.sent && w.Body.String() != tc.want {
			t.Errorf("%s: client got %q, want %q", tc.name, w.Body.String(), tc.want)
		}
	}
}

// TestExchangeAppErrorWins: the app's own error, not the framing, names the
// failure.
func TestExchangeAppErrorWins(t *testing.T) {
	_, _, err := exchange(t, "GET", answer(t, 200, []string{"Content-Length", "9"}, []string{"x"}, "boom"))
	if !errMatches(err, "boom") {
		t.Fatalf("err %v, want the app's", err)
	}
}

func errMatches(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && strings.Contains(err.Error(), want)
}

// TestCloseEndsPipeExchange: over a slot's two pipes (what gw gives a
// runner), Close from another goroutine ends an exchange blocked waiting
// for the answer (Abort), and the runner sees EOF on its request pipe and
// EPIPE on its response pipe.
func TestCloseEndsPipeExchange(t *testing.T) {
	s, reqR, respW := pipeSlot(t)
	requestRead := make(chan struct{})
	runnerSaw := make(chan error, 2)
	go func() { // the fake runner: reads the request, never answers
		rd := NewReader(bufio.NewReader(reqR))
		for {
			typ, n, err := rd.Header()
			if err == nil {
				err = rd.Discard(n)
			}
			if err != nil {
				runnerSaw <- err
				_, werr := respW.Write([]byte("late answer"))
				runnerSaw <- werr
				return
			}
			if typ == RequestEnd {
				close(requestRead)
			}
		}
	}()
	done := make(chan error, 1)
	go func() {
		head := BeginHead(nil)
		r := httptest.NewRequest("GET", "/", nil)
		cgi.Build(&head, r, cgi.Mount{})
		_, err := s.Exchange(httptest.NewRecorder(), r, head.Finish("http", ""), nil)
		done <- err
	}()
	select {
	case <-requestRead:
	case <-time.After(5 * time.Second):
		t.Fatal("the runner never got the request")
	}
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrRunnerGone) {
			t.Errorf("Exchange after Close: %v, want ErrRunnerGone", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the exchange")
	}
	if err := <-runnerSaw; !errors.Is(err, io.EOF) {
		t.Errorf("runner's read after Close: %v, want EOF", err)
	}
	if err := <-runnerSaw; !errors.Is(err, syscall.EPIPE) {
		t.Errorf("runner's write after Close: %v, want EPIPE", err)
	}
}

// TestAnswerBeforeWait: over pipes, the slot writes the request inside its
// wait for the answer (awaiter). A runner that answers at once, before
// the gateway could possibly park, must never be missed: the bug this
// guards against (write, then wait) hung within a few hundred requests.
func TestAnswerBeforeWait(t *testing.T) {
	s, reqR, respW := pipeSlot(t)
	defer s.Close()
	if s.aw == nil {
		t.Fatal("a slot over pipes does not await: the test tests nothing")
	}
	reply := answer(t, 200, []string{"Content-Length", "2"}, []string{"ok"}, "")
	go func() { // the fake runner: answers each request the moment it ends
		rd := NewReader(bufio.NewReader(reqR))
		for {
			typ, n, err := rd.Header()
			if err == nil {
				err = rd.Discard(n)
			}
			if err != nil {
				return
			}
			if typ == RequestEnd {
				if _, err := respW.Write(reply); err != nil {
					return
				}
			}
		}
	}()
	r := httptest.NewRequest("GET", "/", nil)
	head := BeginHead(nil)
	cgi.Build(&head, r, cgi.Mount{})
	frame := head.Finish("http", "")
	done := make(chan error, 1)
	go func() {
		for range 3000 {
			w := httptest.NewRecorder()
			if _, err := s.Exchange(w, r, frame, nil); err != nil || w.Body.String() != "ok" {
				done <- fmt.Errorf("exchange: %v, body %q", err, w.Body.String())
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("an exchange never saw its answer (lost wake-up)")
	}
}

// pipeSlot is a slot over two pipes, as runners get them, with the fake
// runner's ends: where it reads requests and writes answers. Those ends
// are closed at cleanup.
func pipeSlot(t *testing.T) (s *Slot, reqR, respW *os.File) {
	t.Helper()
	reqR, reqW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reqR.Close(); respW.Close() })
	return NewSlot(respR, reqW), reqR, respW
}

type inlineReader struct {
	*bytes.Reader
	b []byte
}

func (r inlineReader) Bytes() []byte { return r.b }

// TestInlineBodyDelivered: an in-memory body reaches the runner whole and
// in order, copied behind the head (small) or written beside it with
// writev (from vecBody up), also when the pipe takes only part of it at
// once (64 KiB and its head do not fit an empty default pipe).
func TestInlineBodyDelivered(t *testing.T) {
	for _, size := range []int{1, vecBody - 1, vecBody, 40 << 10, bodyChunk} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			s, reqR, respW := pipeSlot(t)
			defer s.Close()
			body := make([]byte, size)
			for i := range body {
				body[i] = byte(i * 7)
			}
			got := make(chan []byte, 1)
			go func() { // the fake runner: collects the body, answers at REQUEST_END
				rd := NewReader(bufio.NewReader(reqR))
				var b []byte
				for {
					typ, n, err := rd.Header()
					if err != nil {
						return
					}
					p, err := rd.Payload(n)
					if err != nil {
						return
					}
					switch typ {
					case RequestBody:
						b = append(b, p...)
					case RequestEnd:
						got <- b
						respW.Write(answer(t, 200, []string{"Content-Length", "2"}, []string{"ok"}, ""))
						return
					}
				}
			}()
			r := httptest.NewRequest("POST", "/", nil)
			head := BeginHead(nil)
			cgi.Build(&head, r, cgi.Mount{})
			w := httptest.NewRecorder()
			if _, err := s.Exchange(w, r, head.Finish("http", ""), inlineReader{bytes.NewReader(body), body}); err != nil || w.Body.String() != "ok" {
				t.Fatalf("exchange: %v, answer %q", err, w.Body.String())
			}
			if b := <-got; !bytes.Equal(b, body) {
				t.Errorf("runner got %d bytes, want the %d sent (equal: false)", len(b), len(body))
			}
		})
	}
}

// TestRunnerGoneKeepsCause: each way a runner's end fails comes back as
// ErrRunnerGone with the cause still in the chain (errors.Is finds both),
// and a request that never reached the runner says so (ErrNotDelivered).
// Before, the cause was only text ("%w: %v").
func TestRunnerGoneKeepsCause(t *testing.T) {
	for _, tc := range []struct {
		name      string
		runner    func(reqR, respW *os.File) // the fake runner
		cause     error
		delivered bool
	}{
		{"gone before the request", func(reqR, respW *os.File) { reqR.Close() }, syscall.EPIPE, false},
		{"died before answering", func(reqR, respW *os.File) {
			readRequest(reqR)
			respW.Close()
		}, io.EOF, true},
		{"died mid-frame", func(reqR, respW *os.File) {
			readRequest(reqR)
			respW.Write([]byte{byte(ResponseHead), 0, 0})
			respW.Close()
		}, io.ErrUnexpectedEOF, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, reqR, respW := pipeSlot(t)
			defer s.Close()
			ran := make(chan struct{})
			go func() { defer close(ran); tc.runner(reqR, respW) }()
			if !tc.delivered {
				<-ran // gone before the request is written
			}
			head := BeginHead(nil)
			r := httptest.NewRequest("GET", "/", nil)
			cgi.Build(&head, r, cgi.Mount{})
			_, err := s.Exchange(httptest.NewRecorder(), r, head.Finish("http", ""), nil)
			<-ran
			if !errors.Is(err, ErrRunnerGone) || !errors.Is(err, tc.cause) {
				t.Errorf("err %v: want ErrRunnerGone and %v in its chain", err, tc.cause)
			}
			if errors.Is(err, ErrNotDelivered) == tc.delivered {
				t.Errorf("err %v: ErrNotDelivered %v, want %v", err, !tc.delivered, !tc.delivered)
			}
		})
	}
}

// readRequest reads one request to its REQUEST_END, as a runner does.
func readRequest(r io.Reader) {
	rd := NewReader(bufio.NewReader(r))
	for {
		typ, n, err := rd.Header()
		if err != nil || rd.Discard(n) != nil || typ == RequestEnd {
			return
		}
	}
}
