// Package netguard keeps the service from becoming a way into the network
// it runs in (SSRF): it refuses connections to loopback, private,
// link-local and other non-public addresses.
//
// The check runs in the dialer, on the address actually being connected
// to, after name resolution: a name that resolves to a public address when
// a storage is registered and to 127.0.0.1 a second later (DNS rebinding)
// is refused at connection time, whatever was checked before.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// ErrRefused is a connection the guard will not make.
var ErrRefused = errors.New("address refused by the network guard")

// Guard refuses connections to non-public addresses. A nil *Guard guards
// nothing: its DialContext dials directly (the CLI's case).
type Guard struct {
	// Resolver resolves names before dialing; nil is net.DefaultResolver.
	Resolver *net.Resolver
	// Allow lets these prefixes through although they are not public (an
	// operator's own storage on a private network).
	Allow []netip.Prefix
}

// keepAlive matches net/http's default transport.
const keepAlive = 30 * time.Second

// DialContext connects to addr ("host:port") over TCP, refusing, with an
// error wrapping ErrRefused, any resolved address CheckAddr refuses. With
// several addresses, refused ones are skipped like unreachable ones.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if g == nil {
		d := net.Dialer{KeepAlive: keepAlive}
		return d.DialContext(ctx, network, addr)
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("%w: network %q", ErrRefused, network)
	}
	d := net.Dialer{KeepAlive: keepAlive, Resolver: g.Resolver, Control: g.control}
	return d.DialContext(ctx, network, addr)
}

// control runs between socket() and connect(), with the numeric address.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable address %q", ErrRefused, address)
	}
	return g.CheckAddr(ap.Addr())
}

// CheckAddr returns nil when a may be connected to, else an error wrapping
// ErrRefused that names it. A nil *Guard allows everything.
func (g *Guard) CheckAddr(a netip.Addr) error {
	if g == nil {
		return nil
	}
	for _, p := range g.Allow {
		if p.Contains(a) || p.Contains(a.Unmap()) {
			return nil
		}
	}
	if reason := nonPublic(a); reason != "" {
		return fmt.Errorf("%w: %s is %s", ErrRefused, a, reason)
	}
	return nil
}

// CheckHost resolves host (a name or a literal address) with the guard's
// resolver and checks every address: for an early, clear answer when a
// storage is registered. It is no protection by itself, since the name
// may resolve elsewhere later; DialContext is.
func (g *Guard) CheckHost(ctx context.Context, host string) error {
	if g == nil {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return g.CheckAddr(a)
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", host, err)
	}
	for _, a := range addrs {
		if err := g.CheckAddr(a); err != nil {
			return fmt.Errorf("%s: %w", host, err)
		}
	}
	return nil
}

var (
	// IPv4 ranges that are not the public Internet.
	v4Blocks = []struct {
		p      netip.Prefix
		reason string
	}{
		{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified (\"this network\") address"},
		{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
		{netip.MustParsePrefix("100.64.0.0/10"), "a carrier-grade NAT address"},
		{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
		{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
		{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
		{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol address"},
		{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
		{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
		{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
		{netip.MustParsePrefix("240.0.0.0/4"), "a reserved or broadcast address"},
	}
	// IPv6 ranges refused whole.
	v6Blocks = []struct {
		p      netip.Prefix
		reason string
	}{
		{netip.MustParsePrefix("::/96"), "an unspecified, loopback or IPv4-compatible address"},
		{netip.MustParsePrefix("64:ff9b:1::/48"), "a local-use NAT64 address"},
		{netip.MustParsePrefix("fc00::/7"), "a unique local (private) address"},
		{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
		{netip.MustParsePrefix("fec0::/10"), "a site-local address"},
		{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	}
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
	teredo = netip.MustParsePrefix("2001::/32")
)

// nonPublic says why a is not a public address, or "" when it is. IPv6
// forms that carry an IPv4 address (mapped, NAT64, 6to4, Teredo) are
// judged by that address, since the network delivers them there.
func nonPublic(a netip.Addr) string {
	if !a.IsValid() {
		return "not an address"
	}
	if a.Zone() != "" {
		return "a scoped address"
	}
	if a.Is4In6() {
		return nonPublic(a.Unmap())
	}
	if a.Is4() {
		for _, b := range v4Blocks {
			if b.p.Contains(a) {
				return b.reason
			}
		}
		return ""
	}
	for _, b := range v6Blocks {
		if b.p.Contains(a) {
			return b.reason
		}
	}
	b := a.As16()
	var embedded netip.Addr
	switch {
	case nat64.Contains(a):
		embedded = netip.AddrFrom4([4]byte(b[12:16]))
	case sixTo4.Contains(a):
		embedded = netip.AddrFrom4([4]byte(b[2:6]))
	case teredo.Contains(a):
		// The client's address is stored inverted.
		embedded = netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
	default:
		return ""
	}
	if r := nonPublic(embedded); r != "" {
		return r + " (embedded as " + embedded.String() + ")"
	}
	return ""
}
