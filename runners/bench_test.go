package runners

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/config"
)

// helloApps are the same hello app in each language: any request gets 200
// "Hello, World!" as text/plain, as in the team's yardstick.
var helloApps = []struct {
	lang config.Lang
	file string
	src  string
	bin  string // interpreter the language needs
}{
	{config.LangPython, "hello.py", "def application(environ, start_response):\n" +
		"    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '13')])\n" +
		"    return [b'Hello, World!']\n", "python3"},
	{config.LangRuby, "config.ru", "run ->(env) { [200, {'content-type' => 'text/plain', 'content-length' => '13'}, ['Hello, World!']] }\n", "ruby"},
	{config.LangPerl, "hello.psgi", "my $app = sub { [200, ['Content-Type' => 'text/plain', 'Content-Length' => 13], ['Hello, World!']] };\n", "perl"},
	{config.LangPHP, "index.php", "<?php header('Content-Type: text/plain'); echo 'Hello, World!';\n", "php-cgi"},
}

// BenchmarkRoundTrip sends GET / to one real runner per language, one
// request at a time, through the same Worker.Serve the pool calls: head
// encode, the runner's decode, the app, its response frames, the gateway's
// decode. ns/op is the round trip's latency; runner-user-µs/op and
// runner-sys-µs/op are the CPU the runner process spent per request (from
// /proc), which is the
// shim's cost and barely moves with machine noise.
func BenchmarkRoundTrip(b *testing.B) {
	for _, app := range helloApps {
		b.Run(string(app.lang), func(b *testing.B) {
			a, w := launchApp(b, app.lang, app.file, app.src, app.bin, 1)
			serve := func(rw http.ResponseWriter, r *http.Request) error { return w.Serve(0, rw, r) }
			if a.Front != nil {
				inner := serve
				serve = func(rw http.ResponseWriter, r *http.Request) error {
					return a.Front(rw, r, func(rw http.ResponseWriter, r *http.Request) error { return inner(rw, r) })
				}
			}
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("User-Agent", "bench")
			rw := &countingWriter{h: http.Header{}}
			for range 100 { // warm up (PHP's opcache, Ruby's method caches)
				rw.reset()
				if err := serve(rw, r); err != nil || rw.n != 13 {
					b.Fatalf("warm-up: err %v, %d body bytes", err, rw.n)
				}
			}
			user0, sys0 := procCPU(b, w.PID())
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rw.reset()
				if err := serve(rw, r); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if rw.n != 13 || rw.status != 200 {
				b.Fatalf("last response: status %d, %d body bytes", rw.status, rw.n)
			}
			user, sys := procCPU(b, w.PID())
			perOp := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(b.N) }
			b.ReportMetric(perOp(user-user0), "runner-user-µs/op")
			b.ReportMetric(perOp(sys-sys0), "runner-sys-µs/op")
		})
	}
}

// procCPU is pid's user and system CPU time so far.
func procCPU(b *testing.B, pid int) (user, sys time.Duration) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const tick = time.Second / 100 // USER_HZ is 100 on Linux
	return time.Duration(ut) * tick, time.Duration(st) * tick
}

type countingWriter struct {
	h      http.Header
	status int
	n      int
}

func (c *countingWriter) reset()               { clear(c.h); c.status, c.n = 0, 0 }
func (c *countingWriter) Header() http.Header  { return c.h }
func (c *countingWriter) WriteHeader(code int) { c.status = code }
func (c *countingWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = 200
	}
	c.n += len(p)
	return len(p), nil
}
