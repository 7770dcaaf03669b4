package service

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/openpcrs/pcrs-indexer/internal/netguard"
)

// ErrRefused is a storage location the service will not connect to.
var ErrRefused = errors.New("storage location refused")

// newGuard is the dial-time guard every storage connection of the service
// goes through (scans, the registration probe, downloads); nil when
// private networks are allowed.
func newGuard(cfg Config) *netguard.Guard {
	if cfg.AllowPrivateNetworks {
		return nil
	}
	return &netguard.Guard{}
}

// checkLocation refuses, unless allowed, storages on loopback, private or
// link-local addresses (the service must not become a way into the network
// it runs in), and local folders. It answers early and clearly; the guard
// in every dialer is what holds when a name later resolves elsewhere.
func (s *Service) checkLocation(ctx context.Context, u *url.URL) error {
	if u.Scheme == "file" {
		if !s.cfg.AllowFileStorages {
			return fmt.Errorf("%w: local folders are disabled (--allow-file-storages)", ErrRefused)
		}
		return nil
	}
	host := u.Hostname()
	if u.Scheme == "s3" {
		if s.cfg.S3Endpoint == "" {
			return nil // AWS itself
		}
		eu, err := url.Parse(s.cfg.S3Endpoint)
		if err != nil {
			return fmt.Errorf("%w: S3 endpoint: %v", ErrRefused, err)
		}
		host = eu.Hostname()
	}
	if err := s.guard.CheckHost(ctx, host); err != nil {
		if errors.Is(err, netguard.ErrRefused) {
			return fmt.Errorf("%w: %v (--allow-private-networks)", ErrRefused, err)
		}
		return err
	}
	return nil
}
