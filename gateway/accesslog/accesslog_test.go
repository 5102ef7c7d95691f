package accesslog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var entry = Entry{
	Time:      time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
	App:       "suite",
	Method:    "POST",
	Path:      "/a b/\"quoted\"\n", // must stay on one line, and come back intact
	Proto:     "HTTP/3.0",
	Status:    503,
	Bytes:     12345,
	QueueWait: 1500 * time.Microsecond,
	AppTime:   500 * time.Millisecond,
	Total:     502 * time.Millisecond,
	PID:       4242,
	RequestID: "abc-123",
	Remote:    "127.0.0.1:5555",
}

// want is entry as the fields of a parsed line, durations in nanoseconds.
var want = map[string]string{
	"msg": "request", "level": "INFO", "app": "suite", "method": "POST", "path": entry.Path, "proto": "HTTP/3.0",
	"status": "503", "bytes": "12345", "queue_wait": "1500000", "app_time": "500000000",
	"total": "502000000", "pid": "4242", "request_id": "abc-123", "remote": "127.0.0.1:5555",
}

func TestJSONRecord(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, "json").Log(entry)
	if strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("want one line, got %q", buf.String())
	}
	var got map[string]any
	d := json.NewDecoder(&buf)
	d.UseNumber()
	if err := d.Decode(&got); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	for k, v := range want {
		if s := stringOf(got[k]); s != v {
			t.Errorf("%s = %q, want %q", k, s, v)
		}
	}
	if ts, _ := got["time"].(string); !strings.HasPrefix(ts, "2026-01-02T03:04:05.000006") {
		t.Errorf("time = %q, want the entry's", got["time"])
	}
	if len(got) != len(want)+1 {
		t.Errorf("got keys %v, want those of %v and time", got, want)
	}
}

func stringOf(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return "?"
}

func TestTextRecord(t *testing.T) {
	var buf bytes.Buffer
	New(&buf, "text").Log(entry)
	line, ok := strings.CutSuffix(buf.String(), "\n")
	if !ok || strings.Contains(line, "\n") {
		t.Fatalf("want one line, got %q", buf.String())
	}
	got, err := parseText(line)
	if err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	for k, v := range want {
		s := got[k]
		if d, err := time.ParseDuration(s); err == nil && strings.ContainsAny(s, "smh") {
			s = strconv.FormatInt(int64(d), 10) // text durations are Go duration strings
		}
		if s != v {
			t.Errorf("%s = %q, want %q", k, s, v)
		}
	}
}

// parseText splits a slog text line into its key=value pairs, unquoting
// quoted values.
func parseText(line string) (map[string]string, error) {
	out := map[string]string{}
	for line != "" {
		k, rest, _ := strings.Cut(line, "=")
		var v string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil, err
			}
			v, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			v, rest, _ = strings.Cut(rest, " ")
			rest = " " + rest
		}
		out[k] = v
		line = strings.TrimPrefix(rest, " ")
	}
	return out, nil
}

func TestOpen(t *testing.T) {
	if l, err := Open("", "text", os.Stderr); l != nil || err != nil {
		t.Errorf(`Open("") = %v, %v; want nil, nil (off)`, l, err)
	}
	var stderr bytes.Buffer
	l, err := Open("-", "json", &stderr)
	if err != nil {
		t.Fatal(err)
	}
	l.Log(entry)
	if err := l.Reopen(); err != nil {
		t.Errorf("Reopen on stderr: %v, want a no-op", err)
	}
	if !strings.Contains(stderr.String(), `"request_id":"abc-123"`) {
		t.Errorf(`"-" did not log to stderr: %q`, stderr.String())
	}
	if _, err := Open(filepath.Join(t.TempDir(), "no", "dir"), "text", os.Stderr); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
}

// TestFileReopen rotates the way logrotate does: rename, then Reopen.
func TestFileReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := Open(path, "json", os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if l.Path() != path {
		t.Errorf("Path() = %q, want %q", l.Path(), path)
	}
	first := entry
	first.RequestID = "first"
	l.Log(first)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	second := entry
	second.RequestID = "second"
	l.Log(second)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for name, id := range map[string]string{path + ".1": "first", path: "second"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(string(b), "\n") != 1 || !strings.Contains(string(b), `"request_id":"`+id+`"`) {
			t.Errorf("%s holds %q, want just the %s line", filepath.Base(name), b, id)
		}
	}
}

func TestAttach(t *testing.T) {
	var main bytes.Buffer
	log := slog.New(slog.NewTextHandler(&main, nil))
	if From(log) != nil {
		t.Error("From found an access log on a plain logger")
	}
	if Attach(log, nil) != log {
		t.Error("Attach(log, nil) changed the logger")
	}
	a := New(&bytes.Buffer{}, "text")
	withA := Attach(log, a)
	if From(withA) != a || From(withA.With("app", "x").WithGroup("g")) != a {
		t.Error("From lost the access log (directly or through With/WithGroup)")
	}
	withA.With("app", "x").Info("hello")
	if !strings.Contains(main.String(), "msg=hello app=x") {
		t.Errorf("the main log changed: %q", main.String())
	}
}

func BenchmarkLog(b *testing.B) {
	for _, format := range []string{"text", "json"} {
		b.Run(format, func(b *testing.B) {
			l := New(discard{}, format)
			e := entry
			e.Path = "/app/users/42"
			b.ReportAllocs()
			for b.Loop() {
				l.Log(e)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestVars: the app's fields (uwsgi.set_logvar) come last, in the group
// vars, quoted in text when they need it, and never clash with gw's own.
func TestVars(t *testing.T) {
	e := entry
	e.Vars = []string{"user", "alice", "status", "a b"}
	var text, js bytes.Buffer
	New(&text, "text").Log(e)
	if line := strings.TrimSuffix(text.String(), "\n"); !strings.HasSuffix(line, ` vars.user=alice vars.status="a b"`) ||
		!strings.Contains(line, " status=503 ") {
		t.Errorf("text line %q, want gw's status and the vars at the end", line)
	}
	New(&js, "json").Log(e)
	var got struct {
		Status int               `json:"status"`
		Vars   map[string]string `json:"vars"`
	}
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != 503 || got.Vars["user"] != "alice" || got.Vars["status"] != "a b" || len(got.Vars) != 2 {
		t.Errorf("json: %+v from %s", got, js.String())
	}
}
