package gwtest

import (
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
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	pebbleOnce sync.Once
	pebblePath string
	pebbleErr  error
)

// pebbleBinary builds letsencrypt/pebble, a tool dependency in go.mod,
// once per test process.
func pebbleBinary(t testing.TB) string {
	t.Helper()
	pebbleOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gwtest-pebble-")
		if err != nil {
			pebbleErr = err
			return
		}
		pebblePath = filepath.Join(dir, "pebble")
		cmd := exec.Command("go", "build", "-o", pebblePath, "github.com/letsencrypt/pebble/v2/cmd/pebble")
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			pebbleErr = fmt.Errorf("go build pebble: %v\n%s", err, out)
		}
	})
	if pebbleErr != nil {
		t.Fatal(pebbleErr)
	}
	return pebblePath
}

// FreePort is a TCP port on 127.0.0.1 nothing listens on now, for servers
// that must know each other's ports before they start (pebble's
// validation and gw's listeners).
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Pebble is a running ACME test CA (letsencrypt/pebble) on loopback.
type Pebble struct {
	Directory string // ACME directory URL
	CARoot    string // PEM file of the root pebble's own HTTPS is signed by
	cmd       *exec.Cmd
	log       *syncBuffer
	mgmt      string
	client    *http.Client
}

// PebbleOptions say where pebble's validation connects (gw's listeners)
// and how long its certificates live.
type PebbleOptions struct {
	HTTPPort, TLSPort int           // HTTP-01 and TLS-ALPN-01 validation ports on the domain's address
	Validity          time.Duration // certificate lifetime; 0 = 90 days
}

// StartPebble runs pebble with real validation (no PEBBLE_VA_ALWAYS_VALID)
// and stops it at cleanup.
func StartPebble(t testing.TB, o PebbleOptions) *Pebble {
	t.Helper()
	bin := pebbleBinary(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "pebble.pem"), filepath.Join(dir, "pebble.key")
	pool := selfSigned(t, certFile, keyFile)
	if o.Validity == 0 {
		o.Validity = 90 * 24 * time.Hour
	}
	listen, mgmt := FreePort(t), FreePort(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  "127.0.0.1:" + strconv.Itoa(listen),
		"managementListenAddress":        "127.0.0.1:" + strconv.Itoa(mgmt),
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       o.HTTPPort,
		"tlsPort":                        o.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{"default": map[string]any{
			"description": "gw tests", "validityPeriod": int(o.Validity / time.Second)}},
	}}
	data, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Pebble{
		Directory: fmt.Sprintf("https://127.0.0.1:%d/dir", listen),
		CARoot:    certFile,
		log:       &syncBuffer{},
		mgmt:      fmt.Sprintf("https://127.0.0.1:%d", mgmt),
		client:    &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	}
	p.cmd = exec.Command(bin, "-config", cfgFile)
	// No random 0-15 s sleep before validating; no deliberately rejected
	// nonces (5 % by default), which only slow the client down.
	p.cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := p.client.Get(p.Directory)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not serve %s within 30s: %v\n%s", p.Directory, err, p.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Roots is the pool of pebble's issuing root, which clients of the
// certificates it issued must trust (a new one each run).
func (p *Pebble) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	resp, err := p.client.Get(p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if resp.StatusCode != 200 || !pool.AppendCertsFromPEM(data) {
		t.Fatalf("pebble roots: %d %q", resp.StatusCode, data)
	}
	return pool
}

// Log is what pebble wrote.
func (p *Pebble) Log() string { return p.log.String() }

// Stop ends pebble (by its PID) and waits for it.
func (p *Pebble) Stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and localhost
// and its key, and returns a pool trusting it.
func selfSigned(t testing.TB, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gwtest pebble"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
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
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
