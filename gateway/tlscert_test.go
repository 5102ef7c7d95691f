package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePair writes a self-signed certificate with serial and its key.
func writePair(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}

func servedSerial(t *testing.T, s *certStore) int64 {
	t.Helper()
	c, err := s.get(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.Int64()
}

func TestCertStoreReload(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writePair(t, cert, key, 1)
	s, err := newCertStore(cert, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, s); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}
	writePair(t, cert, key, 2)
	if err := s.reload(); err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, s); got != 2 {
		t.Fatalf("serial %d after reload, want 2", got)
	}
	// A renewal caught half-way: the new certificate with the old key.
	keep, _ := os.ReadFile(key)
	writePair(t, cert, key, 3)
	os.WriteFile(key, keep, 0o600)
	err = s.reload()
	if err == nil || !strings.Contains(err.Error(), cert) {
		t.Fatalf("reload of a mismatched pair: %v, want an error naming %s", err, cert)
	}
	if got := servedSerial(t, s); got != 2 {
		t.Errorf("serial %d after a failed reload, want 2 (kept)", got)
	}
	if cfg := s.tlsConfig(); cfg.MinVersion != tls.VersionTLS12 || cfg.NextProtos[0] != "h2" {
		t.Errorf("policy: min version %x, ALPN %v", cfg.MinVersion, cfg.NextProtos)
	}
	if _, err := newCertStore(filepath.Join(dir, "missing.pem"), key, nil); err == nil {
		t.Error("a missing certificate loaded")
	}
}
