package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gwhq/gw/internal/gwtest"
)

// writeCert writes a self-signed ECDSA certificate for 127.0.0.1 with the
// given serial, and its key, to certFile and keyFile (replacing them by
// rename, as certbot does, so gw never reads half a file).
func writeCert(t *testing.T, certFile, keyFile string, serial int64) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "gw test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	replaceFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".new", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// tlsClient trusts certs and speaks only the protocols given; it makes a
// new connection per request when fresh is set (to see a new certificate).
func tlsClient(set func(*http.Protocols), fresh bool, certs ...*x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	p := new(http.Protocols)
	set(p)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		Protocols:         p,
		DisableKeepAlives: fresh,
	}}
}

func h1(p *http.Protocols) { p.SetHTTP1(true) }
func h2(p *http.Protocols) { p.SetHTTP2(true) }

// startTLSSuite serves the Python suite app at / over HTTP and HTTPS.
func startTLSSuite(t *testing.T, extra ...string) (s *gwtest.Server, cert *x509.Certificate, certFile, keyFile string) {
	py := gwtest.RequirePython(t)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert = writeCert(t, certFile, keyFile, 1)
	args := append([]string{"--https", "127.0.0.1:0", "--cert", certFile, "--key", keyFile,
		"--workers", "2", "--interpreter", py}, extra...)
	s = gwtest.Start(t, append(args, suitePath("python/suite.py"))...)
	if s.URL == "" || s.HTTPS == "" {
		t.Fatalf("gw serves http=%q https=%q; log:\n%s", s.URL, s.HTTPS, s.Log())
	}
	return s, cert, certFile, keyFile
}

// TestTLSAndHTTP2 holds HTTP/1.1 over TLS and HTTP/2 (ALPN) to the answers
// plain HTTP/1.1 gives: environ, a 10 MiB upload by hash (with and without
// a length), and a streamed response that arrives chunk by chunk.
func TestTLSAndHTTP2(t *testing.T) {
	s, cert, _, _ := startTLSSuite(t)
	data := make([]byte, 10<<20)
	rand.Read(data)
	want := fmt.Sprintf("%d %s", len(data), sha(string(data)))
	for _, tc := range []struct {
		name, base, scheme, proto string
		client                    *http.Client
	}{
		{"HTTP/1.1", s.URL, "http", "HTTP/1.1", http.DefaultClient},
		{"HTTP/1.1 over TLS", s.HTTPS, "https", "HTTP/1.1", tlsClient(h1, false, cert)},
		{"H2 over TLS", s.HTTPS, "https", "HTTP/2.0", tlsClient(h2, false, cert)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := getEnv(t, tc.client, tc.base+"/env", tc.proto)
			if env["SERVER_PROTOCOL"] != tc.proto || env["wsgi.url_scheme"] != tc.scheme {
				t.Errorf("SERVER_PROTOCOL %v, wsgi.url_scheme %v; want %s, %s", env["SERVER_PROTOCOL"], env["wsgi.url_scheme"], tc.proto, tc.scheme)
			}
			for _, body := range []io.Reader{bytes.NewReader(data), io.MultiReader(bytes.NewReader(data))} {
				resp, err := tc.client.Post(tc.base+"/hash", "application/octet-stream", body)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.Proto != tc.proto || string(got) != want {
					t.Errorf("upload: %s %d %q, want %s 200 %q", resp.Proto, resp.StatusCode, got, tc.proto, want)
				}
			}
			checkStreamingWith(t, tc.client, tc.base+"/stream")
		})
	}
	t.Run("curl --http2", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("curl not installed")
		}
		up := filepath.Join(t.TempDir(), "up.bin")
		if err := os.WriteFile(up, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out := curl(t, "--http2", "-k", "--data-binary", "@"+up, s.HTTPS+"/hash")
		if out != want+"\n2" {
			t.Errorf("curl --http2 upload: %q, want %q and HTTP version 2", out, want)
		}
		if out := curl(t, "--http2", "-k", "-N", s.HTTPS+"/stream"); out != "chunk 0\nchunk 1\nchunk 2\n\n2" {
			t.Errorf("curl --http2 stream: %q", out)
		}
	})
	t.Run("TLS 1.1 refused", func(t *testing.T) {
		// MinVersion too: Go's client would refuse TLS 1.1 by itself.
		c, err := tls.Dial("tcp", strings.TrimPrefix(s.HTTPS, "https://"),
			&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err == nil {
			c.Close()
			t.Fatal("a TLS 1.1 handshake succeeded; the policy is TLS 1.2 or later")
		}
		if !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("handshake failed with %v, want the server's protocol version alert", err)
		}
	})
}

// curl runs curl against gw and returns the body, a newline and the HTTP
// version it spoke.
func curl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("curl", append([]string{"-sS", "--max-time", "30", "-w", "\n%{http_version}"}, args...)...).Output()
	if err != nil {
		t.Fatalf("curl %v: %v", args, err)
	}
	return string(out)
}

// getEnv fetches the suite's environ JSON and checks the protocol spoken.
func getEnv(t *testing.T, c *http.Client, url, proto string) map[string]any {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Proto != proto {
		t.Fatalf("GET %s: %s %d, want %s 200", url, resp.Proto, resp.StatusCode, proto)
	}
	return env
}

// TestH2C: --h2c serves HTTP/2 with prior knowledge on the plain listener,
// beside HTTP/1.1 on the same port.
func TestH2C(t *testing.T) {
	py := gwtest.RequirePython(t)
	s := gwtest.Start(t, "--h2c", "--workers", "2", "--interpreter", py, suitePath("python/suite.py"))
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Protocols: p}}
	getEnv(t, h2c, s.URL+"/env", "HTTP/2.0")
	getEnv(t, http.DefaultClient, s.URL+"/env", "HTTP/1.1")
	data := make([]byte, 10<<20)
	rand.Read(data)
	resp, err := h2c.Post(s.URL+"/hash", "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("%d %s", len(data), sha(string(data))); resp.ProtoMajor != 2 || string(got) != want {
		t.Errorf("h2c upload: %s %q, want HTTP/2 %q", resp.Proto, got, want)
	}
	checkStreamingWith(t, h2c, s.URL+"/stream")
	if _, err := exec.LookPath("curl"); err == nil {
		if out := curl(t, "--http2-prior-knowledge", s.URL+"/hash", "--data-binary", "abc"); out != "3 "+sha("abc")+"\n2" {
			t.Errorf("curl --http2-prior-knowledge: %q", out)
		}
	}
}

// TestH2CIsOffByDefault: without --h2c an HTTP/2 preface is not HTTP/2.
func TestH2CIsOffByDefault(t *testing.T) {
	s := gwtest.Start(t, "--workers", "1", "--interpreter", gwtest.RequirePython(t), suitePath("python/suite.py"))
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: p}}
	if resp, err := h2c.Get(s.URL + "/env"); err == nil {
		resp.Body.Close()
		t.Fatalf("h2c answered %s without --h2c", resp.Proto)
	}
}

// TestTLSCertReloadOnSIGHUP: a renewed certificate serves new connections
// after SIGHUP; a broken pair is refused and the current one keeps serving.
func TestTLSCertReloadOnSIGHUP(t *testing.T) {
	s, cert1, certFile, keyFile := startTLSSuite(t, "--workers", "1")
	cert2 := writeCert(t, certFile, keyFile, 2)
	c := tlsClient(h2, true, cert1, cert2)
	if got := serial(t, c, s.HTTPS); got != 1 {
		t.Fatalf("serial %d before SIGHUP, want 1 (the files were replaced, not yet reloaded)", got)
	}
	syscall.Kill(s.PID(), syscall.SIGHUP)
	waitSerial(t, c, s.HTTPS, 2)

	replaceFile(t, certFile, []byte("not a certificate\n"))
	syscall.Kill(s.PID(), syscall.SIGHUP)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.Log(), "certificate not reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("no error logged for a broken certificate; log:\n%s", s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := serial(t, c, s.HTTPS); got != 2 {
		t.Errorf("serial %d after a broken renewal, want 2 (the current certificate)", got)
	}
}

func serial(t *testing.T, c *http.Client, base string) int64 {
	t.Helper()
	resp, err := c.Get(base + "/env")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("spoke %s, want HTTP/2", resp.Proto)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
}

func waitSerial(t *testing.T, c *http.Client, base string, want int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for serial(t, c, base) != want {
		if time.Now().After(deadline) {
			t.Fatalf("certificate serial never became %d", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
