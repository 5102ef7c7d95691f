package gateway

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gwhq/gw/internal/files"
	"github.com/gwhq/gw/internal/framing"
)

// sendfileGateway serves one route at /app whose app answers with the
// head the request's query names, through framing.Head as a runner does;
// roots nil means the app has no sendfile roots.
func sendfileGateway(t *testing.T, roots files.Roots) (*Gateway, *strings.Builder) {
	t.Helper()
	app := func(w http.ResponseWriter, r *http.Request) error {
		h := w.Header()
		for k, v := range r.URL.Query() {
			h[http.CanonicalHeaderKey(k)] = v
		}
		h.Set("Content-Length", "4")
		h.Set("X-Seen-Type", r.Header.Get("X-Sendfile-Type")+"|"+r.Header.Get("X-Accel-Mapping"))
		body, err := framing.Head(w, r.Method, 200, true)
		if err != nil {
			return err
		}
		w.WriteHeader(200)
		body.Write([]byte("body"))
		return body.Close()
	}
	var log strings.Builder
	g := &Gateway{log: slog.New(slog.NewTextHandler(&log, nil))}
	g.routes.Store(&table{body: testPolicy(t, 10, 64<<10), routes: []route{{
		name: "app", mount: "/app", serve: app, sendfile: roots,
	}}})
	return g, &log
}

func TestSendfile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "r.txt"), []byte("the file"), 0o644)
	roots, err := files.NewRoots([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	withRoots, log := sendfileGateway(t, roots)
	without, _ := sendfileGateway(t, nil)
	esc := strings.ReplaceAll(dir, "/", "%252F")
	tests := []struct {
		name, method, target string
		g                    *Gateway
		status               int
		body, ctype          string
	}{
		{"x-sendfile", "GET", "/app?x-sendfile=" + dir + "/r.txt", withRoots, 200, "the file", "text/plain; charset=utf-8"},
		{"app's type", "GET", "/app?x-sendfile=" + dir + "/r.txt&content-type=application/x-thing", withRoots, 200, "the file", "application/x-thing"},
		{"post served as get", "POST", "/app?x-sendfile=" + dir + "/r.txt", withRoots, 200, "the file", ""},
		{"x-accel-redirect", "GET", "/app?x-accel-redirect=" + dir + "/r.txt", withRoots, 200, "the file", ""},
		{"x-accel-redirect encoded, query", "GET", "/app?x-accel-redirect=" + esc + "%252Fr.txt%3Fa=1", withRoots, 200, "the file", ""},
		{"outside", "GET", "/app?x-sendfile=/etc/passwd", withRoots, 500, "", ""},
		{"relative", "GET", "/app?x-sendfile=r.txt", withRoots, 500, "", ""},
		{"dot dot", "GET", "/app?x-sendfile=" + dir + "/../r.txt", withRoots, 500, "", ""},
		{"missing", "GET", "/app?x-sendfile=" + dir + "/nope", withRoots, 500, "", ""},
		{"plain answer", "GET", "/app", withRoots, 200, "body", ""},
		{"no roots: passes through", "GET", "/app?x-sendfile=" + dir + "/r.txt", without, 200, "body", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, nil)
			req.Header.Set("X-Accel-Mapping", "/=/etc/")
			w := httptest.NewRecorder()
			tc.g.ServeHTTP(w, req)
			res := w.Result()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%q)", res.StatusCode, tc.status, b)
			}
			if tc.status == 500 {
				if strings.Contains(string(b), "/") {
					t.Errorf("the 500 tells the client a path: %q", b)
				}
				return
			}
			if string(b) != tc.body {
				t.Errorf("body %q, want %q", b, tc.body)
			}
			if tc.ctype != "" && res.Header.Get("Content-Type") != tc.ctype {
				t.Errorf("Content-Type %q, want %q", res.Header.Get("Content-Type"), tc.ctype)
			}
			seen := res.Header.Get("X-Seen-Type")
			if tc.g == withRoots && seen != "X-Sendfile|" {
				t.Errorf("the app saw X-Sendfile-Type|X-Accel-Mapping %q, want %q", seen, "X-Sendfile|")
			}
			if tc.g == without && res.Header.Get("X-Sendfile") == "" {
				t.Errorf("without roots the app's X-Sendfile was dropped")
			}
			if tc.g == withRoots && (res.Header.Get("X-Sendfile") != "" || res.Header.Get("X-Accel-Redirect") != "") {
				t.Errorf("X-Sendfile or X-Accel-Redirect reached the client")
			}
		})
	}
	if !strings.Contains(log.String(), "/etc/passwd") {
		t.Errorf("the log does not name the refused path:\n%s", log)
	}
}
