package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// certStore holds the HTTPS listener's certificate and re-reads it on
// demand, so a renewed certificate (certbot, cert-manager) takes effect at
// SIGHUP without dropping a connection: each handshake asks for the current
// one. When gw has dropped root, read gets the files' contents from the
// helper that kept root (internal/privsep), as nginx's master re-reads
// certificates for its unprivileged workers: the key stays readable to
// root only, never to the app's user that gw now shares.
type certStore struct {
	certFile, keyFile string
	read              func() (certPEM, keyPEM []byte, err error)
	mu                sync.Mutex // one reload at a time
	cur               atomic.Pointer[tls.Certificate]
}

// newCertStore loads the pair with read, or from the files when read is nil.
func newCertStore(certFile, keyFile string, read func() (certPEM, keyPEM []byte, err error)) (*certStore, error) {
	s := &certStore{certFile: certFile, keyFile: keyFile, read: read}
	if s.read == nil {
		s.read = s.readFiles
	}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *certStore) readFiles() (certPEM, keyPEM []byte, err error) {
	if certPEM, err = os.ReadFile(s.certFile); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = os.ReadFile(s.keyFile); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// reload reads the pair again. A pair that does not load (a half-written
// renewal, a key that does not match) keeps the current certificate.
func (s *certStore) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	certPEM, keyPEM, err := s.read()
	if err == nil {
		var c tls.Certificate
		if c, err = tls.X509KeyPair(certPEM, keyPEM); err == nil {
			s.cur.Store(&c)
			return nil
		}
	}
	return fmt.Errorf("load certificate %s with key %s: %w", s.certFile, s.keyFile, err)
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
