// Package acme gets and renews the HTTPS listener's certificates from an
// ACME CA (Let's Encrypt, a private CA), over certmagic: obtained at start
// in the background, kept in a storage directory, renewed before they
// expire, answering the CA's HTTP-01 and TLS-ALPN-01 challenges on gw's own
// listeners (docs/design/acme.md).
package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
)

// Options configure a Manager; gateway builds them from config.ACME and
// the bound listeners.
type Options struct {
	Domains       []string
	Email         string
	CA            string         // ACME directory URL
	Roots         *x509.CertPool // trusted for the CA's own HTTPS; nil = the system's
	Storage       string         // directory of the account, certificates and keys
	RenewInterval time.Duration  // how often certificates are checked for renewal

	// The listeners the CA's validation reaches. HTTPPort 0 = no HTTP
	// listener: no HTTP-01, TLS-ALPN-01 only. Host is the address they are
	// bound to, so certmagic's probe for a free port finds gw's in use and
	// leaves the challenge to gw instead of binding a port of its own.
	Host              string
	HTTPPort, TLSPort int
}

// Manager keeps the certificates of one HTTPS listener.
type Manager struct {
	domains []string
	cache   *certmagic.Cache
	cfg     *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	log     *slog.Logger
	cancel  context.CancelFunc
}

// New prepares a Manager; nothing is obtained until Manage.
func New(o Options, log *slog.Logger) (*Manager, error) {
	if len(o.Domains) == 0 {
		return nil, errors.New("acme: no domains")
	}
	// 0700: the directory holds the account key and the certificates' keys.
	if err := os.MkdirAll(o.Storage, 0o700); err != nil {
		return nil, fmt.Errorf("acme storage: %w", err)
	}
	m := &Manager{domains: o.Domains, log: log}
	zl := zapLogger(log.Handler())
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.cfg, nil },
		RenewCheckInterval: o.RenewInterval,
		Logger:             zl,
	})
	m.cfg = certmagic.New(m.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: o.Storage},
		Logger:  zl,
		OnEvent: m.event,
	})
	m.issuer = certmagic.NewACMEIssuer(m.cfg, certmagic.ACMEIssuer{
		CA:    o.CA,
		Email: o.Email,
		// Configuring an ACME CA is agreeing to its terms, as in Caddy.
		Agreed:                  true,
		TrustedRoots:            o.Roots,
		DisableHTTPChallenge:    o.HTTPPort == 0,
		DisableTLSALPNChallenge: o.TLSPort == 0,
		AltHTTPPort:             o.HTTPPort,
		AltTLSALPNPort:          o.TLSPort,
		ListenHost:              o.Host,
		Logger:                  zl,
	})
	m.cfg.Issuers = []certmagic.Issuer{m.issuer}
	return m, nil
}

// Manage loads the certificates kept in storage, then obtains the missing
// ones in the background, as Caddy does: gw serves meanwhile, and a
// handshake for a name still without a certificate fails until it comes.
// Renewal runs in the background until Stop.
func (m *Manager) Manage() error {
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	if err := m.cfg.ManageAsync(ctx, m.domains); err != nil {
		return fmt.Errorf("acme: manage %v: %w", m.domains, err)
	}
	return nil
}

// Stop ends renewal and any obtain under way.
func (m *Manager) Stop() {
	if m.cancel != nil {
		m.cancel()
	}
	m.cache.Stop()
}

// GetCertificate is the HTTPS listener's tls.Config.GetCertificate: the
// managed certificate, or the TLS-ALPN-01 challenge's for the CA.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.cfg.GetCertificate(hello)
}

// NextProto is the ALPN protocol of TLS-ALPN-01 (RFC 8737), which the
// HTTPS listener must offer so the CA's validation handshake succeeds.
const NextProto = acmez.ACMETLS1Protocol

// HTTPHandler answers the CA's HTTP-01 challenges
// (/.well-known/acme-challenge/, RFC 8555 §8.3) and hands every other
// request to next.
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	return m.issuer.HTTPChallengeHandler(next)
}

// event logs what an operator must know in gw's own words: a new or
// renewed certificate, and a failure (after which the current certificate
// keeps serving and certmagic retries with backoff).
func (m *Manager) event(_ context.Context, name string, data map[string]any) error {
	switch name {
	case "cert_obtained":
		m.log.Info("acme certificate obtained", "domain", data["identifier"], "renewal", data["renewal"], "issuer", data["issuer"])
	case "cert_failed":
		if data["renewal"] == true {
			m.log.Error("acme renewal failed; the current certificate keeps serving", "domain", data["identifier"],
				"remaining", data["remaining"], "err", data["error"])
		} else {
			m.log.Error("acme certificate not obtained; will retry", "domain", data["identifier"], "err", data["error"])
		}
	}
	return nil
}
