package servertest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy forwards TCP connections to a server and can cut them all, as a
// network drop does, or delay every chunk both ways, as distance does.
type Proxy struct {
	Addr    string
	target  string
	latency time.Duration

	mu       sync.Mutex
	conns    map[net.Conn]bool
	accepted int
}

// Accepted counts the connections made through the proxy.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// NewProxy listens on 127.0.0.1 and forwards to target, delaying each
// chunk of the server's answers by latency (like toxiproxy's downstream
// latency toxic): every request waits that much more for its answer.
func NewProxy(t testing.TB, target string, latency time.Duration) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: l.Addr().String(), target: target, latency: latency, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { l.Close(); p.CutAll() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *Proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	p.accepted++
	p.mu.Unlock()
	p.track(client, true)
	p.track(server, true)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(server, client, 0) }()
	go func() { defer wg.Done(); p.pipe(client, server, p.latency) }()
	wg.Wait()
	p.track(client, false)
	p.track(server, false)
}

func (p *Proxy) pipe(dst, src net.Conn, latency time.Duration) {
	defer dst.Close()
	defer src.Close()
	if latency == 0 {
		_, _ = io.Copy(dst, src)
		return
	}
	// Each chunk is delivered latency after it arrived; chunks keep their
	// order and do not queue behind each other's delays.
	type chunk struct {
		b  []byte
		at time.Time
	}
	ch := make(chan chunk, 1024)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{buf[:n], time.Now().Add(latency)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.b); err != nil {
			for range ch {
			}
			return
		}
	}
}

// CutAll closes every connection in flight.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}
