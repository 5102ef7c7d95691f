package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// TestSplicedUploads: bodies between 16 KiB and body_buffer_size go
// client → pipe → runner without entering gw's memory (internal/bodypipe);
// through Python WSGI and ASGI, Ruby and Perl runners they arrive whole
// (checked by hash), and /stats counts each as spliced, so the test knows
// they took that path. A body over body_buffer_size takes the old one.
func TestSplicedUploads(t *testing.T) {
	cases := append([]langSuite{}, suites...)
	cases = append(cases, langSuite{"asgi", func(t *testing.T) string { return gwtest.RequirePython(t) }, ""})
	for _, ls := range cases {
		t.Run(ls.lang, func(t *testing.T) {
			args := []string{"--interpreter", ls.interp(t), "--workers", "2", "--stats", "127.0.0.1:0"}
			path := "/hash"
			if ls.lang == "asgi" {
				args, path = append(args, "--dir", suitePath("python/asgi"), "hash:app"), "/"
			} else {
				args = append(args, suitePath(ls.app))
			}
			s := gwtest.Start(t, args...)
			sizes := []int{16 << 10, 40000, 64 << 10, 64<<10 + 1}
			for _, n := range sizes {
				data := make([]byte, n)
				rand.Read(data)
				resp, got := post(t, s.URL+path, bytes.NewReader(data))
				if want := fmt.Sprintf("%d %s", n, sha(string(data))); resp.StatusCode != 200 || got != want {
					t.Fatalf("%d bytes: %d %q, want %q", n, resp.StatusCode, got, want)
				}
			}
			if got := splicedCount(t, s); got != len(sizes)-1 {
				t.Errorf("bodies_spliced %d, want %d (all but the one over body_buffer_size)", got, len(sizes)-1)
			}
		})
	}
}

// TestSplicedUploadsConcurrent: 16 clients at once, each posting bodies
// that are spliced, to Perl (one slot per runner, an app that answers
// once it has CONTENT_LENGTH bytes, before REQUEST_END): every answer
// comes, with the right hash. The first version waited for the answer
// from inside the write of REQUEST_END and missed answers that came
// before it, stalling a slot under load.
func TestSplicedUploadsConcurrent(t *testing.T) {
	s := gwtest.Start(t, "--interpreter", gwtest.RequireInterpreter(t, "perl"), "--workers", "2",
		"--stats", "127.0.0.1:0", suitePath("perl/suite.psgi"))
	data := make([]byte, 40000)
	rand.Read(data)
	want := fmt.Sprintf("%d %s", len(data), sha(string(data)))
	const clients, each = 16, 40
	c := &http.Client{Timeout: 10 * time.Second}
	errs := make(chan error, clients)
	for range clients {
		go func() {
			for range each {
				resp, err := c.Post(s.URL+"/hash", "application/octet-stream", bytes.NewReader(data))
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != want {
					errs <- fmt.Errorf("answer %d %q, want %q", resp.StatusCode, b, want)
					return
				}
			}
			errs <- nil
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// A body that reaches gw in more pieces than its pipe has buffers is
	// finished in memory (ErrPipeFull), legitimately: under -race and
	// load, 10 of 640 once did.
	got := splicedCount(t, s)
	t.Logf("bodies_spliced %d of %d", got, clients*each)
	if got < clients*each/2 {
		t.Errorf("bodies_spliced %d, want most of %d", got, clients*each)
	}
}

// splicedCount sums /stats' bodies_spliced over s's apps.
func splicedCount(t *testing.T, s *gwtest.Server) int {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr("stats") + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st struct {
		Apps []struct {
			BodiesSpliced int `json:"bodies_spliced"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("stats: %v: %s", err, b)
	}
	n := 0
	for _, a := range st.Apps {
		n += a.BodiesSpliced
	}
	return n
}
