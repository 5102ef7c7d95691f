package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

func startPHP(t *testing.T, extra ...string) *gwtest.Server {
	phpCGI := gwtest.RequireInterpreter(t, "php-cgi")
	args := append([]string{"--interpreter", phpCGI, "--mount", "/php"}, extra...)
	return gwtest.Start(t, append(args, suitePath("php/site"))...)
}

type phpReport struct {
	Server map[string]string `json:"server"`
	Get    map[string]string `json:"get"`
	Post   map[string]string `json:"post"`
	Cookie map[string]string `json:"cookie"`
}

func phpJSON(t *testing.T, body string) phpReport {
	t.Helper()
	var r phpReport
	// PHP encodes an empty array as [], which is not an object: accept it.
	body = strings.NewReplacer(`"get":[]`, `"get":{}`, `"post":[]`, `"post":{}`, `"cookie":[]`, `"cookie":{}`).Replace(body)
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("%v: %.300q", err, body)
	}
	return r
}

// TestPHPServerVars: $_SERVER as nginx + php-fpm give it, through the front
// controller with PATH_INFO, and through a script with PATH_INFO after it.
func TestPHPServerVars(t *testing.T) {
	s := startPHP(t, "--workers", "1")
	host, port, _ := strings.Cut(strings.TrimPrefix(s.URL, "http://"), ":")
	tests := []struct {
		target string
		want   map[string]string
	}{
		{"/php/users/42?x=1", map[string]string{"SCRIPT_NAME": "/php/index.php", "PATH_INFO": "/users/42",
			"REQUEST_URI": "/php/users/42?x=1", "QUERY_STRING": "x=1", "PHP_SELF": "/php/index.php/users/42"}},
		{"/php/index.php/a/b", map[string]string{"SCRIPT_NAME": "/php/index.php", "PATH_INFO": "/a/b", "PHP_SELF": "/php/index.php/a/b"}},
		{"/php/", map[string]string{"SCRIPT_NAME": "/php/index.php", "PHP_SELF": "/php/index.php", "REQUEST_METHOD": "GET",
			"REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": host, "SERVER_PORT": port, "REDIRECT_STATUS": "200", "REQUEST_SCHEME": "http"}},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			req := mustReq("GET", s.URL+tc.target, nil)
			req.Header.Set("X-Custom", "v1")
			_, body := do(t, req)
			r := phpJSON(t, body)
			for k, v := range tc.want {
				if r.Server[k] != v {
					t.Errorf("$_SERVER[%s] = %q, want %q", k, r.Server[k], v)
				}
			}
			if r.Server["HTTP_X_CUSTOM"] != "v1" || !strings.HasSuffix(r.Server["SCRIPT_FILENAME"], "/site/index.php") ||
				!strings.HasSuffix(r.Server["DOCUMENT_ROOT"], "/site") {
				t.Errorf("$_SERVER = %v", r.Server)
			}
		})
	}
}

func TestPHPFormsCookiesSessions(t *testing.T) {
	s := startPHP(t, "--workers", "2")
	req := mustReq("POST", s.URL+"/php/?q=1", strings.NewReader("name=gw+php&n=2"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", "a=1; b=2")
	_, body := do(t, req)
	r := phpJSON(t, body)
	if r.Get["q"] != "1" || r.Post["name"] != "gw php" || r.Post["n"] != "2" || r.Cookie["a"] != "1" || r.Cookie["b"] != "2" {
		t.Errorf("got %+v", r)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	for want := 1; want <= 3; want++ {
		resp, err := client.Get(s.URL + "/php/session.php")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != fmt.Sprintf("visits=%d", want) {
			t.Fatalf("visit %d: %q (cookies %v)", want, b, resp.Header.Values("Set-Cookie"))
		}
	}
}

func TestPHPStatusHeadersRedirect(t *testing.T) {
	s := startPHP(t, "--workers", "1")
	resp, body := do(t, mustReq("GET", s.URL+"/php/status.php", nil))
	if resp.StatusCode != 418 || resp.Header.Get("X-Teapot") != "short and stout" || body != "I'm a teapot" {
		t.Errorf("status.php: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(s.URL + "/php/redirect.php")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/php/sub/" {
		t.Errorf("redirect.php: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, body := gwtest.Get(t, s.URL+"/php/sub/"); code != 200 || body != "sub index" {
		t.Errorf("/php/sub/: %d %q", code, body)
	}
	if code, _ := gwtest.Get(t, s.URL+"/php/error.php"); code != 500 {
		t.Errorf("error.php: %d, want 500", code)
	}
}

func TestPHPUploadsAndBodies(t *testing.T) {
	s := startPHP(t, "--workers", "2")
	file := make([]byte, 1<<20)
	rand.Read(file)
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("doc", "doc.bin")
	fw.Write(file)
	mw.WriteField("title", "report")
	mw.Close()
	req := mustReq("POST", s.URL+"/php/upload.php", &mp)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	_, body := do(t, req)
	var up struct {
		Files map[string]struct {
			Name   string `json:"name"`
			Size   int    `json:"size"`
			Error  int    `json:"error"`
			SHA256 string `json:"sha256"`
		} `json:"files"`
		Post map[string]string `json:"post"`
	}
	if err := json.Unmarshal([]byte(body), &up); err != nil {
		t.Fatalf("%v: %q", err, body)
	}
	if f := up.Files["doc"]; f.Name != "doc.bin" || f.Size != len(file) || f.Error != 0 || f.SHA256 != sha(string(file)) || up.Post["title"] != "report" {
		t.Errorf("upload: %+v", up)
	}
	t.Run("10 MiB by hash", func(t *testing.T) {
		data := make([]byte, 10<<20)
		rand.Read(data)
		resp, got := post(t, s.URL+"/php/hash.php", bytes.NewReader(data))
		if want := fmt.Sprintf("%d %s", len(data), sha(string(data))); resp.StatusCode != 200 || got != want {
			t.Fatalf("%d %q, want %q", resp.StatusCode, got, want)
		}
		_, dl := gwtest.Get(t, s.URL+"/php/download.php?10485760")
		if len(dl) != 10<<20 || sha(dl) != sha(string(pattern(10<<20))) {
			t.Fatalf("download: %d bytes", len(dl))
		}
	})
	t.Run("chunked body gets an exact CONTENT_LENGTH", func(t *testing.T) {
		req := mustReq("POST", s.URL+"/php/hash.php", io.MultiReader(strings.NewReader("hello "), strings.NewReader("world")))
		req.ContentLength = -1
		if resp, got := do(t, req); resp.StatusCode != 200 || got != "11 "+sha("hello world") {
			t.Fatalf("%d %q", resp.StatusCode, got)
		}
	})
}

// TestPHPDocumentRoot: static files come from the gateway, a .php file's
// source never does, and nothing outside the root is reachable.
func TestPHPDocumentRoot(t *testing.T) {
	s := startPHP(t, "--workers", "1")
	resp, body := do(t, mustReq("GET", s.URL+"/php/style.css", nil))
	if resp.StatusCode != 200 || body != "body { color: green; }\n" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Errorf("style.css: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if _, body := gwtest.Get(t, s.URL+"/php/hash.php"); strings.Contains(body, "<?php") || strings.Contains(body, "file_get_contents") {
		t.Errorf("PHP source served: %q", body)
	}
	for _, target := range []string{"/php/../outside/secret.txt", "/php/%2e%2e/outside/secret.txt", "/php/sub/%2E%2E/%2e%2e/outside/secret.txt",
		"/php/leak.txt", "/php/.env", "/php/..%2f..%2fetc%2fpasswd"} {
		rc := dialRaw(t, s)
		rc.send("GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, body := rc.response()
		if resp.StatusCode == 200 || strings.Contains(body, "outside the root") || strings.Contains(body, "do-not-serve") || strings.Contains(body, "root:") {
			t.Errorf("%s: %d %q", target, resp.StatusCode, body)
		}
	}
}

func TestPHPStreamsFlush(t *testing.T) {
	s := startPHP(t, "--workers", "1")
	checkStreaming(t, s.URL+"/php/stream.php")
}

// TestPHPKilledMidRequest: 502 for the request on a killed php-cgi, then a
// fresh one serves.
func TestPHPKilledMidRequest(t *testing.T) {
	s := startPHP(t, "--workers", "1")
	killMidRequest(t, s.URL+"/php/pid.php", s.URL+"/php/sleep.php?10", 10*time.Second)
}

// TestPHPRecyclesWithoutFailing: under concurrent load no request fails
// while php-cgi processes are recycled, whether gw recycles them
// (max_requests: the replacement is ready first) or php-cgi exits by itself
// (PHP_FCGI_MAX_REQUESTS in the app's env: gw never sends it request N+1).
func TestPHPRecyclesWithoutFailing(t *testing.T) {
	phpCGI := gwtest.RequireInterpreter(t, "php-cgi")
	for _, tc := range []struct{ name, extra string }{
		{"max_requests", "max_requests: 5"},
		{"PHP_FCGI_MAX_REQUESTS", "env: {PHP_FCGI_MAX_REQUESTS: \"5\"}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fmt.Sprintf("listen: {http: \"127.0.0.1:0\"}\napps:\n  - {name: site, lang: php, path: %s, interpreter: %s, workers: 2, %s}\n",
				suitePath("php/site"), phpCGI, tc.extra)
			s := gwtest.Start(t, "-c", writeFile(t, "gw.yaml", cfg))
			// Clients go on until six php-cgi processes have served (each
			// recycled after about 5 requests), bounded in count and time:
			// a replacement that is slow to start (a loaded machine) lets
			// the old runner serve on meanwhile, so a fixed request count
			// says nothing about how many runners it sees.
			pids := map[string]bool{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			deadline := time.Now().Add(30 * time.Second)
			enough := func() bool { mu.Lock(); defer mu.Unlock(); return len(pids) >= 6 }
			for c := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 2000 && !enough() && time.Now().Before(deadline); i++ {
						code, body := gwtest.Get(t, s.URL+"/pid.php")
						if code != 200 {
							t.Errorf("client %d request %d: %d %q", c, i, code, body)
							return
						}
						mu.Lock()
						pids[body] = true
						mu.Unlock()
						time.Sleep(2 * time.Millisecond)
					}
				}()
			}
			wg.Wait()
			if !enough() {
				t.Errorf("%d distinct php-cgi pids served, want 6 (recycling at 5 requests)", len(pids))
			}
			if !strings.Contains(s.Log(), "reason=max_requests") {
				t.Errorf("no recycling logged:\n%s", s.Log())
			}
		})
	}
}

// TestPHPDeadline: php-cgi past --timeout gets 504 in about that time, is
// replaced, and the app serves on.
func TestPHPDeadline(t *testing.T) {
	s := startPHP(t, "--workers", "1", "--timeout", "1s")
	_, before := gwtest.Get(t, s.URL+"/php/pid.php")
	start := time.Now()
	code, body := gwtest.Get(t, s.URL+"/php/sleep.php?5")
	if took := time.Since(start); code != http.StatusGatewayTimeout || took < 900*time.Millisecond || took > 3*time.Second {
		t.Fatalf("status %d %q after %v, want 504 after about 1s", code, body, took)
	}
	waitNewPID(t, s.URL+"/php/pid.php", before, 10*time.Second)
	if !strings.Contains(s.Log(), "reason=deadline") {
		t.Errorf("exit reason not logged:\n%s", s.Log())
	}
}
