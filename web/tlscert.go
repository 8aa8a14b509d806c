package web

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/workerca/workerca/enroll"
)

type certManagerConfig struct {
	Issue       func(context.Context, enroll.ServerCertRequest) ([]*x509.Certificate, crypto.Signer, error)
	DNSNames    []string
	IPAddresses []net.IP
	TTL         time.Duration
	Clock       func() time.Time
	Logger      *slog.Logger
	// After waits like time.After (the default); tests drive it.
	After func(time.Duration) <-chan time.Time
}

// certManager holds the HTTPS listener's certificate, issued by our own
// intermediate at start and renewed after two thirds of its lifetime.
type certManager struct {
	cfg  certManagerConfig
	cert atomic.Pointer[tls.Certificate]
}

func newCertManager(ctx context.Context, cfg certManagerConfig) (*certManager, error) {
	if len(cfg.DNSNames) == 0 && len(cfg.IPAddresses) == 0 {
		return nil, errors.New("web: the server certificate needs at least one DNS name or IP address")
	}
	if cfg.TTL == 0 {
		cfg.TTL = 24 * time.Hour
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	m := &certManager{cfg: cfg}
	if err := m.renew(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *certManager) renew(ctx context.Context) error {
	chain, key, err := m.cfg.Issue(ctx, enroll.ServerCertRequest{DNSNames: m.cfg.DNSNames, IPAddresses: m.cfg.IPAddresses, TTL: m.cfg.TTL})
	if err != nil {
		return err
	}
	tc := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	m.cert.Store(tc)
	m.cfg.Logger.Info("server certificate issued", "not_after", chain[0].NotAfter, "dns", m.cfg.DNSNames)
	return nil
}

// renewAt is two thirds into the current certificate's lifetime.
func (m *certManager) renewAt() time.Time {
	leaf := m.cert.Load().Leaf
	return enroll.RenewAfter(leaf.NotBefore, leaf.NotAfter)
}

func (m *certManager) renewLoop(ctx context.Context) {
	retry := 10 * time.Second
	for {
		wait := m.renewAt().Sub(m.cfg.Clock())
		if wait < 0 {
			wait = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-m.cfg.After(wait):
		}
		if err := m.renew(ctx); err != nil {
			m.cfg.Logger.Error("server certificate renewal failed; retrying", "error", err, "retry_in", retry)
			select {
			case <-ctx.Done():
				return
			case <-m.cfg.After(retry):
			}
		}
	}
}

// tlsConfig is TLS 1.2+; client certificates are requested, not required,
// and verified by the routes that use them.
func (m *certManager) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequestClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return m.cert.Load(), nil
		},
	}
}
