package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/gwhq/gw/gateway/acme"
	"github.com/gwhq/gw/internal/config"
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

func (s *certStore) tlsConfig() *tls.Config { return tlsPolicy(s.get) }

// tlsPolicy is the HTTPS policy: TLS 1.2 or later, with Go's default
// cipher suites (AEAD and forward-secret only since Go 1.22 dropped RSA key
// exchange and 1.23 3DES) and curves. ALPN offers h2 first, so clients that
// speak HTTP/2 get it and the others fall back to HTTP/1.1.
func tlsPolicy(get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: get,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// certSource is where an HTTPS listener's certificate comes from: files
// (certStore) or an ACME CA (acmeCerts). Every TLS listener (HTTPS, and
// HTTP/3 over QUIC) takes its *tls.Config from tlsConfig, so the policy
// and the certificate are the same on all of them.
type certSource interface {
	tlsConfig() *tls.Config
	reload() error // SIGHUP: read the files again
}

// acmeCerts are the certificates gateway/acme keeps.
type acmeCerts struct{ m *acme.Manager }

// tlsConfig also offers acme-tls/1, the CA's TLS-ALPN-01 validation
// (RFC 8737): GetCertificate answers it with the challenge certificate.
func (a acmeCerts) tlsConfig() *tls.Config {
	c := tlsPolicy(a.m.GetCertificate)
	c.NextProtos = append(c.NextProtos, acme.NextProto)
	return c
}

// reload does nothing: renewal runs in the background, not at SIGHUP.
func (a acmeCerts) reload() error { return nil }

// newACME makes the ACME manager of l's HTTPS listener, on the ports of
// the listeners Listen bound: the CA validates on them (HTTP-01 on the
// HTTP listener, TLS-ALPN-01 on the HTTPS one).
func (g *Gateway) newACME(a *config.ACME) (*acme.Manager, error) {
	o := acme.Options{Domains: a.Domains, Email: a.Email, CA: a.CA, Storage: a.Storage, RenewInterval: a.RenewInterval}
	if a.CARoot != "" {
		pem, err := os.ReadFile(a.CARoot)
		if err != nil {
			return nil, fmt.Errorf("acme ca_root: %w", err)
		}
		o.Roots = x509.NewCertPool()
		if !o.Roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("acme ca_root %s: no PEM certificate in it", a.CARoot)
		}
	}
	for _, ln := range g.lns {
		ta, ok := ln.Addr().(*net.TCPAddr)
		if !ok {
			continue
		}
		// The first listener of each kind, as the CA validates on one port.
		switch {
		case ln.proto == "http" && o.HTTPPort == 0:
			o.HTTPPort = ta.Port
		case ln.proto == "https" && o.TLSPort == 0:
			o.TLSPort = ta.Port
		default:
			continue
		}
		if !ta.IP.IsUnspecified() {
			o.Host = ta.IP.String()
		}
	}
	return acme.New(o, g.log)
}

// ReloadCerts re-reads the certificate and key of every HTTPS listener, as
// SIGHUP does. A pair that fails to load leaves that listener serving its
// current certificate, and the error says which files were at fault.
func (g *Gateway) ReloadCerts() error {
	var errs []error
	seen := map[certSource]bool{} // several HTTPS listeners share one
	for _, ln := range g.lns {
		if ln.certs == nil || seen[ln.certs] {
			continue
		}
		seen[ln.certs] = true
		if err := ln.certs.reload(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
