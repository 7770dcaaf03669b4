package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
)

// ErrRefused is a storage location the service will not connect to.
var ErrRefused = errors.New("storage location refused")

// checkLocation refuses, unless allowed, storages on loopback, private or
// link-local addresses (the service must not become a way into the network
// it runs in), and local folders.
func (s *Service) checkLocation(ctx context.Context, u *url.URL) error {
	if u.Scheme == "file" {
		if !s.cfg.AllowFileStorages {
			return fmt.Errorf("%w: local folders are disabled (--allow-file-storages)", ErrRefused)
		}
		return nil
	}
	if s.cfg.AllowPrivateNetworks {
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
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", host, err)
	}
	for _, a := range addrs {
		if private(a) {
			return fmt.Errorf("%w: %s resolves to %s, a loopback, private or link-local address (--allow-private-networks)", ErrRefused, host, a)
		}
	}
	return nil
}

func private(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsUnspecified() || a.IsMulticast() || a.IsInterfaceLocalMulticast() ||
		netip.MustParsePrefix("100.64.0.0/10").Contains(a) // carrier-grade NAT
}
