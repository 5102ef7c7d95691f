package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// certStore holds the HTTPS listener's certificate and re-reads it from its
// files on demand, so a renewed certificate (certbot, cert-manager) takes
// effect at SIGHUP without dropping a connection: each handshake asks for
// the current one.
type certStore struct {
	certFile, keyFile string
	mu                sync.Mutex // one reload at a time
	cur               atomic.Pointer[tls.Certificate]
}

func newCertStore(certFile, keyFile string) (*certStore, error) {
	s := &certStore{certFile: certFile, keyFile: keyFile}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// reload reads the pair again. A pair that does not load (a half-written
// renewal, a key that does not match) keeps the current certificate.
func (s *certStore) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("load certificate %s with key %s: %w", s.certFile, s.keyFile, err)
	}
	s.cur.Store(&c)
	return nil
}

func (s *certStore) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cur.Load(), nil
}

// tlsConfig is the HTTPS policy: TLS 1.2 or later, with Go's default cipher
// suites (AEAD and forward-secret only since Go 1.22 dropped RSA key
// exchange and 1.23 3DES) and curves. ALPN offers h2 first, so clients that
// speak HTTP/2 get it and the others fall back to HTTP/1.1.
func (s *certStore) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.get,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// ReloadCerts re-reads the certificate and key of every HTTPS listener, as
// SIGHUP does. A pair that fails to load leaves that listener serving its
// current certificate, and the error says which files were at fault.
func (g *Gateway) ReloadCerts() error {
	var errs []error
	for _, ln := range g.lns {
		if ln.certs == nil {
			continue
		}
		if err := ln.certs.reload(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
