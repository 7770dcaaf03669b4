package netguard_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/internal/netguard"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/backends"
)

// rebindingDNS is a DNS server on 127.0.0.1 that answers every A question
// with first, once, then with then: a name that looks public when checked
// and points at the loopback a moment later. AAAA questions get no record.
type rebindingDNS struct {
	addr        string
	first, then netip.Addr

	mu       sync.Mutex
	aAnswers []netip.Addr
}

func newRebindingDNS(t *testing.T, first, then string) *rebindingDNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	d := &rebindingDNS{addr: pc.LocalAddr().String(), first: netip.MustParseAddr(first), then: netip.MustParseAddr(then)}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := d.answer(buf[:n]); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	return d
}

// answer builds the response to one query: the header and question echoed,
// and for an A question one record pointing back at the question's name.
func (d *rebindingDNS) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	end := 12
	for end < len(q) && q[end] != 0 {
		end += int(q[end]) + 1
	}
	end += 5 // the root label, QTYPE, QCLASS
	if end > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[end-4 : end-2])
	resp := append([]byte(nil), q[:end]...)
	resp[2] = 0x80 | q[2]&0x01 // a response, RD copied
	resp[3] = 0x80             // RA, NOERROR
	binary.BigEndian.PutUint16(resp[6:8], 0)
	binary.BigEndian.PutUint16(resp[8:10], 0)
	binary.BigEndian.PutUint16(resp[10:12], 0) // no EDNS echoed
	if qtype != 1 {
		return resp
	}
	d.mu.Lock()
	a := d.then
	if len(d.aAnswers) == 0 {
		a = d.first
	}
	d.aAnswers = append(d.aAnswers, a)
	d.mu.Unlock()
	binary.BigEndian.PutUint16(resp[6:8], 1)
	ip := a.As4()
	resp = append(resp, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4)
	return append(resp, ip[:]...)
}

func (d *rebindingDNS) answers() []netip.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]netip.Addr(nil), d.aAnswers...)
}

// resolver sends every DNS question to d, whatever resolv.conf says.
func (d *rebindingDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dialer net.Dialer
		return dialer.DialContext(ctx, "udp", d.addr)
	}}
}

// TestDNSRebinding: the name is checked when the storage is registered and
// resolves to a public address (192.0.2.1, never connected to); when the
// backend connects it resolves to 127.0.0.1, where a server listens. No
// backend may reach that server, and each says why with ErrRefused.
func TestDNSRebinding(t *testing.T) {
	const name = "tuiles.rebind.test"
	backendsToTry := []struct {
		scheme string
		opts   storage.Options
		path   string
	}{
		{"http", storage.Options{}, "/dalles/"},
		{"https", storage.Options{}, "/dalles/"},
		{"s3", storage.Options{S3PathStyle: true, S3AccessKey: "k", S3SecretKey: "s", Isolated: true}, ""},
		{"sftp", storage.Options{Password: "pw", SFTPInsecureIgnoreHostKey: true}, "/dalles"},
		{"ftp", storage.Options{}, "/dalles"},
		{"ftps", storage.Options{}, "/dalles"},
	}
	for _, b := range backendsToTry {
		t.Run(b.scheme, func(t *testing.T) {
			t.Setenv("SSH_AUTH_SOCK", "")
			srv := newCountingServer(t)
			dns := newRebindingDNS(t, "192.0.2.1", "127.0.0.1")
			guard := &netguard.Guard{Resolver: dns.resolver()}
			// Bounds a regression's wait, should a connection get through.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := guard.CheckHost(ctx, name); err != nil {
				t.Fatalf("registration-time check of a public answer: %v", err)
			}
			opts := b.opts
			opts.Guard = guard
			location := fmt.Sprintf("%s://%s:%d%s", b.scheme, name, srv.port(), b.path)
			if b.scheme == "s3" {
				opts.S3Endpoint = fmt.Sprintf("http://%s:%d", name, srv.port())
				location = "s3://pcrs/livraison"
			}
			err := openAndList(ctx, location, opts)
			if !errors.Is(err, netguard.ErrRefused) {
				t.Errorf("err = %v, want one wrapping netguard.ErrRefused", err)
			}
			if n := srv.connectionsBefore(t); n != 0 {
				t.Errorf("the loopback server got %d connections", n)
			}
			got := dns.answers()
			if len(got) < 2 || got[0] != dns.first || got[len(got)-1] != dns.then {
				t.Errorf("DNS answers %v: the backend did not resolve the name through the guard's resolver", got)
			}
		})
	}
}

func openAndList(ctx context.Context, location string, opts storage.Options) error {
	st, err := backends.Registry().Open(ctx, location, opts)
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = st.List(ctx, "")
	return err
}
