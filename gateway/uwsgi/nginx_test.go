package uwsgi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// seenReq is what the handler reports back as JSON.
type seenReq struct {
	Method, RequestURI, Path, Host, Cookie, Dup, TE, Remote string
	ContentLength                                           int64
	BodySHA                                                 string
	BodyErr                                                 string
	Params                                                  map[string]string
}

var reporter = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ignore" {
		w.WriteHeader(http.StatusForbidden) // the body stays unread
		return
	}
	h := sha256.New()
	_, err := io.Copy(h, r.Body)
	s := seenReq{Method: r.Method, RequestURI: r.RequestURI, Path: r.URL.Path, Host: r.Host,
		Cookie: r.Header.Get("Cookie"), Dup: r.Header.Get("X-Dup"), TE: r.Header.Get("Transfer-Encoding"),
		Remote: r.RemoteAddr, ContentLength: r.ContentLength, BodySHA: fmt.Sprintf("%x", h.Sum(nil)), Params: Params(r.Context())}
	if err != nil {
		s.BodyErr = err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Add("Set-Cookie", "a=1")
	w.Header().Add("Set-Cookie", "b=2")
	if r.URL.Path == "/big" {
		w.Write(bytes.Repeat([]byte("z"), 300<<10))
		return
	}
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(s)
})

func TestRealNginx(t *testing.T) {
	ts := start(t, reporter)
	base := gwtest.StartNginx(t, "", "location / { include /etc/nginx/uwsgi_params; uwsgi_pass unix:"+ts.addr+"; }")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	do := func(req *http.Request) (*http.Response, seenReq) {
		t.Helper()
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s seenReq
		if resp.StatusCode == http.StatusCreated {
			if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
				t.Fatal(err)
			}
		}
		return resp, s
	}

	t.Run("GET", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/u/a%20b?x=1", nil)
		req.Host = "Client.Example:8080"
		req.Header.Add("Cookie", "c1=1")
		req.Header.Add("Cookie", "c2=2")
		req.Header.Add("X-Dup", "x")
		req.Header.Add("X-Dup", "y")
		resp, s := do(req)
		if resp.StatusCode != 201 || len(resp.Header["Set-Cookie"]) != 2 {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
		// $host is lowercased and loses the port (Debian's HTTP_HOST $host).
		if s.Method != "GET" || s.RequestURI != "/u/a%20b?x=1" || s.Path != "/u/a b" || s.Host != "client.example" {
			t.Errorf("%+v", s)
		}
		if s.Params["PATH_INFO"] != "/u/a b" || s.Params["CONTENT_LENGTH"] != "" || s.ContentLength != 0 {
			t.Errorf("PATH_INFO %q, CONTENT_LENGTH %q, ContentLength %d", s.Params["PATH_INFO"], s.Params["CONTENT_LENGTH"], s.ContentLength)
		}
		// Trap 4: Go's client sends duplicates as separate lines; nginx
		// 1.22 passes each as its own var; gw joins them.
		if s.Cookie != "c1=1; c2=2" || s.Dup != "x, y" {
			t.Errorf("Cookie %q, X-Dup %q", s.Cookie, s.Dup)
		}
		if !strings.HasPrefix(s.Remote, "127.0.0.1:") {
			t.Errorf("RemoteAddr %q", s.Remote)
		}
	})

	t.Run("1 MiB POST", func(t *testing.T) {
		body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
		req, _ := http.NewRequest("POST", base+"/up", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/octet-stream")
		_, s := do(req)
		if sum := fmt.Sprintf("%x", sha256.Sum256(body)); s.BodySHA != sum || s.BodyErr != "" || s.ContentLength != 1<<20 {
			t.Errorf("sha %s err %q CL %d", s.BodySHA, s.BodyErr, s.ContentLength)
		}
	})

	t.Run("chunked POST arrives with a length (traps 2, 6)", func(t *testing.T) {
		body := strings.Repeat("chunk", 1000)
		req, _ := http.NewRequest("POST", base+"/chunked", io.MultiReader(strings.NewReader(body))) // unknown length: chunked
		_, s := do(req)
		if s.ContentLength != int64(len(body)) || s.TE != "" || s.Params["HTTP_TRANSFER_ENCODING"] != "chunked" {
			t.Errorf("CL %d, TE header %q, HTTP_TRANSFER_ENCODING %q", s.ContentLength, s.TE, s.Params["HTTP_TRANSFER_ENCODING"])
		}
	})

	t.Run("early answer to an unread 4 MiB upload", func(t *testing.T) {
		req, _ := http.NewRequest("POST", base+"/ignore", bytes.NewReader(bytes.Repeat([]byte("u"), 4<<20)))
		if resp, _ := do(req); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})

	t.Run("300 KiB response", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/big", nil)
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || len(b) != 300<<10 || resp.StatusCode != 200 {
			t.Fatalf("%d, %d bytes, %v", resp.StatusCode, len(b), err)
		}
	})
}
