package sdk

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gwhq/gw/proto/pluginpb"
	"github.com/gwhq/gw/runners/goplugin/internal/wire"
)

// sent records what a responseWriter sends.
type sent struct {
	msgs []*pluginpb.Response
	err  error
}

func (s *sent) Send(m *pluginpb.Response) error {
	if s.err != nil {
		return s.err
	}
	c := &pluginpb.Response{Head: m.Head, Body: append([]byte(nil), m.Body...), Flush: m.Flush, Trailers: m.Trailers}
	s.msgs = append(s.msgs, c)
	return nil
}

func headers(pairs []*pluginpb.Header) http.Header {
	h := http.Header{}
	wire.AddHeaders(h, pairs)
	return h
}

func TestResponseWriter(t *testing.T) {
	big := strings.Repeat("x", wire.ChunkSize+10)
	for _, tc := range []struct {
		name    string
		handler func(w http.ResponseWriter)
		check   func(t *testing.T, msgs []*pluginpb.Response)
	}{
		{"small response is one message", func(w http.ResponseWriter) {
			w.Header().Set("X-A", "1")
			io.WriteString(w, "hi")
		}, func(t *testing.T, msgs []*pluginpb.Response) {
			if len(msgs) != 1 || msgs[0].Head.GetStatus() != 200 || string(msgs[0].Body) != "hi" || msgs[0].Flush {
				t.Fatalf("%v", msgs)
			}
			if got := headers(msgs[0].Head.Headers).Get("X-A"); got != "1" {
				t.Errorf("X-A = %q", got)
			}
		}},
		{"flush sends the head and what is buffered", func(w http.ResponseWriter) {
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
		}, func(t *testing.T, msgs []*pluginpb.Response) {
			if len(msgs) != 2 || msgs[0].Head == nil || string(msgs[0].Body) != "a" || !msgs[0].Flush ||
				msgs[1].Head != nil || string(msgs[1].Body) != "b" || msgs[1].Flush {
				t.Fatalf("%v", msgs)
			}
		}},
		{"large body goes in chunks", func(w http.ResponseWriter) {
			io.WriteString(w, big)
		}, func(t *testing.T, msgs []*pluginpb.Response) {
			if len(msgs) != 2 || len(msgs[0].Body) != wire.ChunkSize || len(msgs[1].Body) != 10 || msgs[1].Head != nil {
				t.Fatalf("%d messages", len(msgs))
			}
		}},
		{"no body after 304", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusNotModified)
			if _, err := io.WriteString(w, "x"); !errors.Is(err, http.ErrBodyNotAllowed) {
				panic(err)
			}
		}, func(t *testing.T, msgs []*pluginpb.Response) {
			if len(msgs) != 1 || msgs[0].Head.GetStatus() != 304 || len(msgs[0].Body) != 0 {
				t.Fatalf("%v", msgs)
			}
		}},
		{"1xx goes at once, then the final head", func(w http.ResponseWriter) {
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusCreated)
		}, func(t *testing.T, msgs []*pluginpb.Response) {
			if len(msgs) != 2 || msgs[0].Head.GetStatus() != 103 || !msgs[0].Flush || msgs[1].Head.GetStatus() != 201 {
				t.Fatalf("%v", msgs)
			}
			if headers(msgs[0].Head.Headers).Get("Link") == "" {
				t.Error("103 without its Link header")
			}
		}},
		{"trailers", func(w http.ResponseWriter) {
			w.Header().Set("Trailer", "X-Sum, Content-Length")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		}, func(t *testing.T, msgs []*pluginpb.Response) {
			last := msgs[len(msgs)-1]
			tr := headers(last.Trailers)
			if len(tr) != 2 || tr.Get("X-Sum") != "42" || tr.Get("X-Late") != "late" {
				t.Errorf("trailers %v", tr)
			}
			if h := headers(msgs[0].Head.Headers); h.Get(http.TrailerPrefix+"X-Late") != "" || h.Get("Trailer") == "" {
				t.Errorf("head %v", h)
			}
		}},
		{"ErrAbortHandler before the head", func(w http.ResponseWriter) {
			io.WriteString(w, "unsent")
			panic(http.ErrAbortHandler)
		}, func(t *testing.T, msgs []*pluginpb.Response) {
			if len(msgs) != 0 {
				t.Fatalf("%v", msgs)
			}
		}},
		{"panic before the head becomes a 500", func(w http.ResponseWriter) {
			w.Header().Set("X-Gone", "1")
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, "unsent")
			panic("boom")
		}, func(t *testing.T, msgs []*pluginpb.Response) {
			if len(msgs) != 1 || msgs[0].Head.GetStatus() != 500 || string(msgs[0].Body) != "Internal Server Error\n" {
				t.Fatalf("%v", msgs)
			}
			if headers(msgs[0].Head.Headers).Get("X-Gone") != "" {
				t.Error("the handler's headers survived the 500")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := &sent{}
			s := &service{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.handler(w) }), log: discardLog()}
			err := s.serve(context.Background(), out, &pluginpb.RequestHead{Method: "GET", Target: []byte("/"), Proto: "HTTP/1.1"}, nil)
			if err != nil && !errors.Is(err, errAborted) {
				t.Fatal(err)
			}
			tc.check(t, out.msgs)
		})
	}
}

func TestPanicAfterHeadAborts(t *testing.T) {
	out := &sent{}
	s := &service{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic("late")
	}), log: discardLog()}
	err := s.serve(context.Background(), out, &pluginpb.RequestHead{Method: "GET", Target: []byte("/")}, nil)
	if err == nil || !strings.Contains(err.Error(), "handler panicked: late") || len(out.msgs) != 1 {
		t.Fatalf("err %v, %d messages", err, len(out.msgs))
	}
}

func TestWriteAfterSendFailure(t *testing.T) {
	out := &sent{err: errors.New("stream gone")}
	w := newResponseWriter(out)
	w.Flush()
	if _, err := io.WriteString(w, "x"); err == nil || !strings.Contains(err.Error(), "stream gone") {
		t.Fatalf("write after a failed send: %v", err)
	}
}
