// Command h3 measures one gw's HTTP/3 listener against its HTTPS (HTTP/2)
// listener in the same run: hello req/s at a fixed concurrency and the
// time of one 1 GiB download. It starts gw itself (-gw, --allow-root when
// root) with a self-signed certificate and a small WSGI app, on loopback.
//
//	go build -o /tmp/gw ./cmd/gw && go run ./bench/h3 -gw /tmp/gw
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quic-go/quic-go/http3"
)

const app = `def application(environ, start_response):
    if environ["PATH_INFO"] == "/download":
        size = int(environ.get("QUERY_STRING") or "0")
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))])
        return _chunks(size)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "12")])
    return [b"Hello world\n"]

def _chunks(size):
    block = b"x" * 65536
    while size > 0:
        n = min(size, len(block))
        yield block[:n]
        size -= n
`

func main() {
	gw := flag.String("gw", "gw", "gw binary")
	py := flag.String("python", "/usr/bin/python3", "Python interpreter")
	conc := flag.Int("c", 16, "concurrent requests (one connection per protocol, multiplexed)")
	dur := flag.Duration("d", 5*time.Second, "hello load duration per protocol")
	size := flag.Int64("download", 1<<30, "download size in bytes")
	workers := flag.Int("workers", 2, "runner processes")
	flag.Parse()

	dir, err := os.MkdirTemp("", "gw-h3bench-")
	check(err)
	defer os.RemoveAll(dir)
	cert := writeCert(dir)
	check(os.WriteFile(filepath.Join(dir, "app.py"), []byte(app), 0o644))
	args := []string{"run", "--https", "127.0.0.1:0", "--http3", "127.0.0.1:0",
		"--cert", filepath.Join(dir, "cert.pem"), "--key", filepath.Join(dir, "key.pem"),
		"--workers", fmt.Sprint(*workers), "--interpreter", *py, filepath.Join(dir, "app.py")}
	if os.Geteuid() == 0 {
		args = append([]string{args[0], "--allow-root"}, args[1:]...)
	}
	cmd := exec.Command(*gw, args...)
	stderr, err := cmd.StderrPipe()
	check(err)
	check(cmd.Start())
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	https, h3 := awaitServing(stderr)

	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tlsConf := &tls.Config{RootCAs: pool}
	p := new(http.Protocols)
	p.SetHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf, Protocols: p}}
	h3t := &http3.Transport{TLSClientConfig: tlsConf}
	defer h3t.Close()
	h3c := &http.Client{Transport: h3t}

	fmt.Printf("| protocol | hello req/s (c=%d, %v) | %d MiB download |\n|---|---|---|\n", *conc, *dur, *size>>20)
	for _, tc := range []struct {
		name string
		c    *http.Client
		base string
	}{{"HTTP/2", h2c, "https://" + https}, {"HTTP/3", h3c, "https://" + h3}} {
		rps, errs := hello(tc.c, tc.base+"/", *conc, *dur)
		took, n, derr := download(tc.c, fmt.Sprintf("%s/download?%d", tc.base, *size))
		if derr != nil || n != *size {
			log.Fatalf("%s download: %d bytes, %v", tc.name, n, derr)
		}
		fmt.Printf("| %s | %.0f (%d errors) | %.2f s (%.0f MiB/s) |\n", tc.name, rps, errs, took.Seconds(),
			float64(n)/(1<<20)/took.Seconds())
	}
}

// hello runs conc clients for d (bounded in time) and returns req/s.
func hello(c *http.Client, url string, conc int, d time.Duration) (float64, int64) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := c.Get(url)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(ok.Load()) / time.Since(start).Seconds(), failed.Load()
}

func download(c *http.Client, url string) (time.Duration, int64, error) {
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return time.Since(start), n, err
}

// awaitServing reads gw's log until its "gw serving" line (60 s at most)
// and returns the HTTPS and HTTP/3 addresses; the rest of the log goes to
// stderr.
func awaitServing(r io.Reader) (https, h3 string) {
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	re := func(k string) *regexp.Regexp { return regexp.MustCompile(`\b` + k + `=(\S+)`) }
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				log.Fatal("gw exited before serving")
			}
			if !strings.Contains(l, "gw serving") {
				continue
			}
			go func() { // drain the rest, so gw never blocks on its log
				for l := range lines {
					fmt.Fprintln(os.Stderr, l)
				}
			}()
			return re("https").FindStringSubmatch(l)[1], re("http3").FindStringSubmatch(l)[1]
		case <-timeout:
			log.Fatal("gw did not serve within 60s")
		}
	}
}

func writeCert(dir string) *x509.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gw bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	check(err)
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	check(err)
	check(os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	check(os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600))
	c, err := x509.ParseCertificate(der)
	check(err)
	return c
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
