// Command goplugin measures what gw's Go plugin host costs: the same
// 13-byte "Hello, World!" handler served by a plain net/http server (the
// ceiling) and through a plugin process (runners/goplugin's Launcher and a
// real pool behind net/http), each loaded with wrk on loopback in one run.
//
//	go run ./bench/goplugin                  (-d 8s -c 32 -t 1 -workers 1)
//
// The binary is its own plugin: started with benchPluginEnv set, it serves
// the handler through sdk.Serve instead. Needs wrk on PATH.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/gwhq/gw/runners/goplugin"
	"github.com/gwhq/gw/runners/goplugin/sdk"
	"github.com/gwhq/gw/runners/pool"
)

const (
	benchPluginEnv        = "GW_BENCH_GOPLUGIN"
	benchPluginProfileEnv = "GW_BENCH_GOPLUGIN_CPUPROFILE" // the plugin's own CPU profile, for the whole run
)

func hello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "Hello, World!")
}

func main() {
	if os.Getenv(benchPluginEnv) == "1" {
		if f := os.Getenv(benchPluginProfileEnv); f != "" {
			out, err := os.Create(f)
			if err == nil && pprof.StartCPUProfile(out) == nil {
				defer out.Close()
				defer pprof.StopCPUProfile() // sdk.Serve returns when gw stops the plugin
			}
		}
		sdk.Serve(http.HandlerFunc(hello))
		return
	}
	dur := flag.Duration("d", 8*time.Second, "wrk duration per target")
	conns := flag.Int("c", 32, "wrk connections")
	threads := flag.Int("t", 1, "wrk threads")
	workers := flag.Int("workers", 1, "plugin processes")
	slots := flag.Int("slots", 32, "requests one plugin process serves at once")
	cpuprofile := flag.String("cpuprofile", "", "write the host's CPU profile of the plugin run to `file` "+
		"(and the plugin's to file.plugin)")
	flag.Parse()
	if err := run(*dur, *conns, *threads, *workers, *slots, *cpuprofile); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(dur time.Duration, conns, threads, workers, slots int, cpuprofile string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	env := append(os.Environ(), benchPluginEnv+"=1")
	if cpuprofile != "" {
		env = append(env, benchPluginProfileEnv+"="+cpuprofile+".plugin")
	}
	l := &goplugin.Launcher{App: "bench", Path: exe, Env: env, Slots: slots, Log: log}
	p := pool.New(pool.Options{Name: "bench", Workers: workers}, l, log)
	if err := p.Start(context.Background()); err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	}()
	viaPlugin := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := p.Serve(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	})

	fmt.Printf("wrk -t%d -c%d -d%v on loopback, %d CPUs; plugin: %d process(es) x %d slots\n",
		threads, conns, dur, runtime.NumCPU(), workers, slots)
	plain, err := measure("net/http (ceiling)", http.HandlerFunc(hello), dur, conns, threads)
	if err != nil {
		return err
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	plugged, err := measure("gw go-plugin host", viaPlugin, dur, conns, threads)
	pprof.StopCPUProfile()
	if err != nil {
		return err
	}
	fmt.Printf("ratio: plugin / net/http = %.2f\n", plugged/plain)
	return nil
}

// measure serves h on a loopback port, warms it up, and returns wrk's
// requests per second.
func measure(name string, h http.Handler, dur time.Duration, conns, threads int) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	srv := &http.Server{Handler: h}
	served := make(chan error, 1)
	// Ends at Shutdown below.
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Shutdown(context.Background())
		<-served
	}()
	url := "http://" + ln.Addr().String() + "/"
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "Hello, World!" {
		return 0, fmt.Errorf("%s answers %d %q", name, resp.StatusCode, body)
	}
	if _, err := wrk(url, time.Second, conns, threads); err != nil { // warm-up
		return 0, err
	}
	out, err := wrk(url, dur, conns, threads)
	if err != nil {
		return 0, err
	}
	rps, err := strconv.ParseFloat(match(out, `Requests/sec:\s+([0-9.]+)`), 64)
	if err != nil {
		return 0, fmt.Errorf("wrk output without Requests/sec:\n%s", out)
	}
	if n := match(out, `Non-2xx or 3xx responses: (\d+)`); n != "" {
		return 0, fmt.Errorf("%s: %s responses were not 2xx", name, n)
	}
	fmt.Printf("%-20s %10.0f req/s   avg latency %s\n", name, rps, match(out, `Latency\s+(\S+)`))
	return rps, nil
}

func wrk(url string, dur time.Duration, conns, threads int) (string, error) {
	secs := max(int(dur.Round(time.Second)/time.Second), 1)
	cmd := exec.Command("wrk", "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s", url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("wrk: %w\n%s", err, out)
	}
	return string(out), nil
}

// match returns re's first group in out, or "".
func match(out, re string) string {
	if m := regexp.MustCompile(re).FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}
