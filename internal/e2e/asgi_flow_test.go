package e2e

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// TestASGIFlowControl: the runner's slot I/O (gw_asgi.py FrameReader and
// FrameWriter) under answers bigger than every buffer on the way and a
// body the app never reads: send() holds a streaming app back while the
// client does not read, a 16 MiB body in one send arrives whole, and a
// slot whose app left 8 MiB of body unread serves the next request.
func TestASGIFlowControl(t *testing.T) {
	gwtest.RequirePython(t)
	// Without response buffering gw passes the answer on as it comes, so
	// a client that does not read holds the runner back (buffered, gw
	// would take the answer into a temp file).
	s := gwtest.Start(t, "--workers", "1", "--interface", "asgi", "--response-buffering=false",
		app("asgi/flow.py"))
	const mib = 1 << 20

	t.Run("stream held back", func(t *testing.T) {
		const parts = 64
		resp, err := http.Get(s.URL + "/stream?" + strconv.Itoa(parts))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		first := make([]byte, mib)
		if _, err := io.ReadFull(resp.Body, first); err != nil {
			t.Fatal(err)
		}
		// The client reads nothing more: the app must stall once the pipe,
		// the runner's 64 KiB, gw and the sockets are full, far short of
		// 64 MiB. Wait until its count stops moving.
		sent, deadline := -1, time.Now().Add(10*time.Second)
		for time.Now().Before(deadline) {
			_, body := gwtest.Get(t, s.URL+"/sent")
			n, _ := strconv.Atoi(body)
			if n == sent {
				break
			}
			sent = n
			time.Sleep(200 * time.Millisecond)
		}
		if sent >= parts/2 {
			t.Fatalf("the app sent %d of %d MiB while the client read 1: no back-pressure", sent, parts)
		}
		rest, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		got := append(first, rest...)
		if len(got) != parts*mib {
			t.Fatalf("got %d bytes, want %d", len(got), parts*mib)
		}
		for i := range parts {
			if part := got[i*mib : (i+1)*mib]; bytes.Count(part, []byte{byte(i)}) != mib {
				t.Fatalf("part %d is not all %#x", i, byte(i))
			}
		}
		if _, body := gwtest.Get(t, s.URL+"/sent"); body != strconv.Itoa(parts) {
			t.Fatalf("sent %s after the client read everything, want %d", body, parts)
		}
	})

	t.Run("one big send", func(t *testing.T) {
		code, body := gwtest.Get(t, s.URL+"/one?16")
		if code != 200 || len(body) != 16*mib || bytes.Count([]byte(body), []byte("z")) != 16*mib {
			t.Fatalf("%d, %d bytes", code, len(body))
		}
	})

	t.Run("unread body", func(t *testing.T) {
		big := bytes.Repeat([]byte("b"), 8*mib)
		for i := range 3 {
			resp, body := post(t, s.URL+"/ignore", bytes.NewReader(big))
			if resp.StatusCode != 200 || body != "ignored" {
				t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
			}
		}
		if code, body := gwtest.Get(t, s.URL+"/sent"); code != 200 {
			t.Fatalf("after unread bodies: %d %q", code, body)
		}
	})
}
