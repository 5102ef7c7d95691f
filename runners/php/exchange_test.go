package php

import (
	"bufio"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/fcgi"
)

// fastFCGI answers each request on each connection the moment its empty
// STDIN record arrives: STDOUT and END_REQUEST in one write, as php-cgi does.
func fastFCGI(t *testing.T, ln net.Listener) {
	answer := fcgi.AppendRecord(nil, fcgi.TypeStdout, 1, []byte("Content-Type: text/plain\r\n\r\nhi"))
	answer = fcgi.AppendRecord(answer, fcgi.TypeStdout, 1, nil)
	answer = fcgi.AppendEndRequest(answer, 1, 0, fcgi.StatusRequestComplete)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			rd := fcgi.NewReader(bufio.NewReader(c))
			for {
				h, content, err := rd.Next()
				if err != nil {
					return
				}
				if h.Type == fcgi.TypeStdin && len(content) == 0 {
					if _, err := c.Write(answer); err != nil {
						return
					}
				}
			}
		}()
	}
}

// TestServeAnswerBeforeWait: sendAndAwait parks on the poller right after
// its write, skipping the read Go would try first. An answer that comes
// back before the goroutine parks must still be seen: a php-cgi answering
// at once, request after request on the kept connection, is never missed
// (a wait that dropped the early readiness hung here).
func TestServeAnswerBeforeWait(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "fcgi.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go fastFCGI(t, ln)
	root, err := NewRoot(dir, "index.php")
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{l: &Launcher{Root: root}, path: sock, log: slog.New(slog.DiscardHandler)}
	done := make(chan error, 1)
	go func() {
		for range 2000 {
			r := httptest.NewRequest("GET", "/", nil)
			r = r.WithContext(WithTarget(r.Context(), Target{Script: filepath.Join(dir, "index.php"), ScriptName: "/index.php"}))
			rec := httptest.NewRecorder()
			if err := w.Serve(0, rec, r); err != nil {
				done <- err
				return
			}
			if rec.Body.String() != "hi" {
				t.Errorf("body %q", rec.Body.String())
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		w.Abort(0) // ends the stuck exchange
		t.Fatal("a request never got its answer: an early answer was missed")
	}
}
