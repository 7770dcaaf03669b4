// Package ftp is the storage backend for FTP and FTPS (explicit TLS)
// servers: anonymous or password login, passive mode, ranged reads with
// REST, one connection per concurrent request, reconnection on failure.
package ftp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/openpcrs/pcrs-indexer/internal/netguard"
	"github.com/openpcrs/pcrs-indexer/storage"
)

// maxIdle bounds the connections kept between requests.
const maxIdle = 64

// Storage serves the files below a folder of an FTP server.
type Storage struct {
	addr           string
	root           string
	user, password string
	tls            *tls.Config
	guard          *netguard.Guard

	mu   sync.Mutex
	idle []*conn
}

// conn is a logged-in control connection. Its data connections are
// dialled under the context of the request in flight (ctx), and both are
// closed to abort that request.
type conn struct {
	c   *ftp.ServerConn
	raw *deadlineConn
	tls *tls.Config // FTPS: the control connection's, its session cache its own

	mu   sync.Mutex
	ctx  context.Context
	list *listBound // the request's, when it is a listing
	data net.Conn
}

// begin makes ctx the request in flight; list bounds its data connection
// when it is a listing.
func (c *conn) begin(ctx context.Context, list *listBound) {
	deadline, _ := ctx.Deadline()
	c.raw.bound(deadline)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ctx, c.list, c.data = ctx, list, nil
}

// end forgets the request in flight.
func (c *conn) end() {
	c.raw.bound(time.Time{})
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ctx, c.list, c.data = nil, nil, nil
}

// abort closes the connections of the request in flight.
func (c *conn) abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.raw != nil {
		c.raw.Close()
	}
	if c.data != nil {
		c.data.Close()
	}
}

// dialData opens a data connection. The address is the control
// connection's (the library does not trust PASV addresses), and goes
// through the guard all the same. With FTPS the library leaves a dialled
// data connection as it is, though it asked the server for TLS on it
// (PROT P): the TLS is ours to add.
func (c *conn) dialData(s *Storage, network, addr string) (net.Conn, error) {
	c.mu.Lock()
	ctx, list := c.ctx, c.list
	c.mu.Unlock()
	if ctx == nil {
		return nil, errors.New("data connection outside a request")
	}
	dctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	d, err := s.guard.DialContext(dctx, network, addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx != ctx || ctx.Err() != nil {
		d.Close()
		return nil, context.Canceled
	}
	dc := &deadlineConn{Conn: d}
	deadline, _ := ctx.Deadline()
	dc.bound(deadline)
	// abort closes the socket itself: closing TLS would first send an
	// alert, a write that may wait.
	c.data = dc
	var data net.Conn = dc
	if c.tls != nil {
		data = &tlsData{Conn: tls.Client(dc, c.tls), ctx: ctx}
	}
	if list != nil {
		// Above TLS: the bound counts the listing, not its records.
		data = &listConn{Conn: data, b: list, control: c.raw}
	}
	return data, nil
}

// tlsData is an FTPS data connection. Its handshake cannot happen at the
// dial: the server starts it once it has the command, which the library
// sends after dialling. It comes with the first read or write, bounded
// then as a connection's handshake is. Its reads and writes on the socket
// are the deadlineConn's, under the request's deadline.
type tlsData struct {
	*tls.Conn
	ctx    context.Context
	shaken atomic.Bool
}

func (t *tlsData) handshake() error {
	if t.shaken.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(t.ctx, handshakeTimeout)
	defer cancel()
	if err := t.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS on the data connection: %w", err)
	}
	t.shaken.Store(true)
	return nil
}

func (t *tlsData) Read(p []byte) (int, error) {
	if err := t.handshake(); err != nil {
		return 0, err
	}
	return t.Conn.Read(p)
}

func (t *tlsData) Write(p []byte) (int, error) {
	if err := t.handshake(); err != nil {
		return 0, err
	}
	return t.Conn.Write(p)
}

// deadlineConn puts every read and write under a fresh deadline: the
// earliest of the request's, the stall timeout from now, and the one the
// library sets while it awaits the end of a transfer. The library never
// clears its deadline: applied to the connection itself, it would fail the
// first command of the next request once the connection sat in the pool
// that long. Held here instead, it ends with the request that set it.
type deadlineConn struct {
	net.Conn

	mu      sync.Mutex
	request time.Time // zero: none but the stall timeout
	lib     time.Time
}

// bound starts a request that must end by deadline (zero: no deadline).
func (c *deadlineConn) bound(deadline time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.request, c.lib = deadline, time.Time{}
}

// arm sets the deadline of the next read or write.
func (c *deadlineConn) arm() error {
	c.mu.Lock()
	d := time.Now().Add(stallTimeout)
	for _, t := range []time.Time{c.request, c.lib} {
		if !t.IsZero() && t.Before(d) {
			d = t
		}
	}
	c.mu.Unlock()
	return c.Conn.SetDeadline(d)
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if err := c.arm(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if err := c.arm(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// SetDeadline and its two halves are the library's (TLS passes its own
// on). The library only sets both halves at once, so one deadline stands
// for the three.
func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lib = t
	return nil
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error  { return c.SetDeadline(t) }
func (c *deadlineConn) SetWriteDeadline(t time.Time) error { return c.SetDeadline(t) }

// stallTimeout bounds every wait for the server within a request, under
// the context's deadline: a transfer may take long, a silence may not.
var stallTimeout = 60 * time.Second

// maxListBytes and maxListLines bound one folder's listing, as httpdir
// bounds a page and its links (100,000 tiles make under 10 MB of ls
// lines). The library holds the whole listing, parsed, before answering:
// a server sending without end would exhaust the memory. Lines bound the
// entries where they are short.
var maxListBytes, maxListLines int64 = 16 << 20, 250_000

// listBound counts what one listing read, and keeps why it stopped.
type listBound struct {
	dir          string
	bytes, lines int64
	err          error
}

// listConn is a listing's data connection, read up to the bounds.
type listConn struct {
	net.Conn
	b       *listBound
	control net.Conn
}

func (l *listConn) Read(p []byte) (int, error) {
	b := l.b
	if b.err != nil {
		return 0, b.err
	}
	n, err := l.Conn.Read(p)
	b.bytes += int64(n)
	b.lines += int64(bytes.Count(p[:n], []byte{'\n'}))
	switch {
	case b.bytes > maxListBytes:
		b.err = fmt.Errorf("%w: the listing of %q is longer than %d bytes", storage.ErrTooLarge, b.dir, maxListBytes)
	case b.lines > maxListLines:
		b.err = fmt.Errorf("%w: the listing of %q has more than %d lines", storage.ErrTooLarge, b.dir, maxListLines)
	default:
		return n, err
	}
	// The server is still sending: its answer on the control connection
	// would come after all of it, if ever. Closing that connection ends
	// the wait at once.
	l.control.Close()
	return 0, b.err
}

// handshakeTimeout bounds the connection, greeting, TLS and login of a new
// control connection, and the connection of a data channel.
var handshakeTimeout = 30 * time.Second

// shutTimeout bounds the wait for the server's word that a transfer ended
// (the library sets it as the deadline of that wait).
var shutTimeout = 10 * time.Second

// rootCAs verifies FTPS servers' certificates; nil is the system's roots.
// Only tests set it, to trust the certificate they made.
var rootCAs *x509.CertPool

// Open is the registry's opener for ftp:// and ftps:// locations. Without a
// user name the login is anonymous.
func Open(ctx context.Context, u *url.URL, opts storage.Options) (storage.Storage, error) {
	s := &Storage{addr: u.Host, root: u.Path, user: "anonymous", password: "anonymous", guard: opts.Guard}
	if u.Port() == "" {
		s.addr = net.JoinHostPort(u.Hostname(), "21")
	}
	if u.User != nil && u.User.Username() != "" {
		s.user, s.password = u.User.Username(), opts.Password
	}
	if u.Scheme == "ftps" {
		s.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12, RootCAs: rootCAs}
	}
	if s.root == "" {
		s.root = "/"
	}
	// Log in now: wrong credentials are the user's to fix, not retried.
	c, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	s.put(c, nil)
	return s, nil
}

func (s *Storage) get(ctx context.Context) (*conn, error) {
	s.mu.Lock()
	if n := len(s.idle); n > 0 {
		c := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		return c, nil
	}
	s.mu.Unlock()
	return s.connect(ctx)
}

// connect opens and logs in a control connection, all of it within the
// handshake timeout and the context: a server that accepts and then stays
// silent cannot hold the caller.
func (s *Storage) connect(ctx context.Context) (*conn, error) {
	deadline := time.Now().Add(handshakeTimeout)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	d, err := s.guard.DialContext(dctx, "tcp", s.addr)
	if err != nil {
		return nil, s.failed(ctx, "connecting to", err)
	}
	raw := &deadlineConn{Conn: d}
	raw.bound(deadline)
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	cn := &conn{raw: raw}
	if s.tls != nil {
		// Servers may refuse a data connection that does not resume the
		// control connection's TLS session (vsftpd does by default: "522
		// SSL connection failed: session reuse required"). Go resumes
		// from session tickets (TLS 1.3, or 1.2 when the server issues
		// them), which the server sends on the control connection. A
		// cache per control connection makes the session resumed that
		// connection's own, as the rule means, and never another's.
		cn.tls = s.tls.Clone()
		cn.tls.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	}
	var control net.Conn = raw // handed to the library once, as its first dial
	opts := []ftp.DialOption{
		ftp.DialWithShutTimeout(shutTimeout),
		ftp.DialWithDialFunc(func(network, address string) (net.Conn, error) {
			if c := control; c != nil {
				control = nil
				return c, nil
			}
			return cn.dialData(s, network, address)
		}),
	}
	if cn.tls != nil {
		opts = append(opts, ftp.DialWithExplicitTLS(cn.tls))
	}
	c, err := ftp.Dial(s.addr, opts...)
	if err != nil {
		cn.raw.Close()
		return nil, s.failed(ctx, "connecting to", err)
	}
	if err := c.Login(s.user, s.password); err != nil {
		c.Quit() // still under the deadline
		// A refusal (530, or a USER rejected with a bare message) is final;
		// only a broken connection is worth another try.
		var ne net.Error
		var te *textproto.Error
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.As(err, &te) && te.Code >= 400 && te.Code < 500 {
			return nil, storage.Transient(fmt.Errorf("logging in to %s: %w", s.addr, err))
		}
		return nil, fmt.Errorf("logging in to %s as %s: %w", s.addr, s.user, err)
	}
	if !stop() {
		c.Quit()
		return nil, ctx.Err()
	}
	raw.bound(time.Time{}) // each request brings its own
	cn.c = c
	return cn, nil
}

// failed picks the error to return for a failed connection: the
// context's when it ended, the guard's refusal as final, else transient.
func (s *Storage) failed(ctx context.Context, what string, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, netguard.ErrRefused):
		return fmt.Errorf("%s %s: %w", what, s.addr, err)
	}
	return storage.Transient(fmt.Errorf("%s %s: %w", what, s.addr, err))
}

// put returns a connection to the pool, or closes it after a failure that
// may have left it out of step.
func (s *Storage) put(c *conn, err error) {
	if err != nil && !replyError(err) {
		c.c.Quit()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.idle) < maxIdle {
		s.idle = append(s.idle, c)
		return
	}
	c.c.Quit()
}

// replyError is a complete answer of the server: the connection is fine.
func replyError(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te)
}

// with runs op on a pooled connection; a cancelled context closes it.
// list, when op lists a folder, bounds the listing read.
func (s *Storage) with(ctx context.Context, list *listBound, op func(*ftp.ServerConn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := s.get(ctx)
	if err != nil {
		return err
	}
	c.begin(ctx, list)
	done := make(chan error, 1)
	go func() { done <- op(c.c) }()
	select {
	case <-ctx.Done():
		c.abort()
		<-done
		return ctx.Err()
	case err = <-done:
	}
	c.end()
	s.put(c, err)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && !replyError(err): // the context's deadline, on the connection, struck first
		return ctx.Err()
	case errors.Is(err, netguard.ErrRefused), errors.Is(err, storage.ErrTooLarge):
		return err
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		switch {
		case te.Code == ftp.StatusFileUnavailable:
			return fmt.Errorf("%w: %v", storage.ErrNotFound, err)
		case te.Code >= 400 && te.Code < 500: // 4xx are transient by definition
			return storage.Transient(err)
		}
		return err
	}
	return storage.Transient(err) // the connection broke
}

// List reads one folder; cursor is its key ("" for the root).
func (s *Storage) List(ctx context.Context, cursor string) (storage.Page, error) {
	dir, err := storage.JoinKey(s.root, cursor)
	if err != nil {
		return storage.Page{}, err
	}
	var page storage.Page
	bound := &listBound{dir: dir}
	err = s.with(ctx, bound, func(c *ftp.ServerConn) error {
		entries, err := c.List(dir)
		if bound.err != nil {
			return bound.err // not the library's errors on top of it
		}
		if err != nil {
			return err
		}
		page = storage.Page{}
		for _, e := range entries {
			if e.Name == "." || e.Name == ".." || e.Name == "" {
				continue
			}
			key := e.Name
			if cursor != "" {
				key = cursor + "/" + e.Name
			}
			if err := addressable(s.root, key, e.Name); err != nil {
				// Named in the report with the reason, never read.
				if e.Type == ftp.EntryTypeFolder {
					key += "/"
				}
				page.Objects = append(page.Objects, storage.Object{Key: key, Size: storage.SizeUnknown, Err: err})
				continue
			}
			switch e.Type {
			case ftp.EntryTypeFolder:
				page.Dirs = append(page.Dirs, key)
			case ftp.EntryTypeFile:
				size := int64(e.Size)
				if e.Size > math.MaxInt64 {
					size = storage.SizeUnknown // no file is that large: the listing is wrong
				}
				page.Objects = append(page.Objects, storage.Object{Key: key, Size: size, ModTime: e.Time.UTC()})
			case ftp.EntryTypeLink:
				page.Objects = append(page.Objects, storage.Object{Key: key, Size: storage.SizeUnknown})
			}
		}
		return nil
	})
	return page, err
}

// addressable says why the listed name cannot be asked for again under
// key: a name holding '/' (a hostile server's, or one escaping the
// folder), or one the storage's keys cannot carry (a backslash).
func addressable(root, key, name string) error {
	if strings.Contains(name, "/") {
		return fmt.Errorf("%w: the server lists the name %q, which holds a '/'", storage.ErrBadKey, name)
	}
	_, err := storage.JoinKey(root, key)
	return err
}

// ReadAt is REST + RETR; the transfer is cut once p is full.
func (s *Storage) ReadAt(ctx context.Context, key string, p []byte, off int64) (int, error) {
	name, err := storage.JoinKey(s.root, key)
	if err != nil {
		return 0, err
	}
	var n int
	var eof bool
	err = s.with(ctx, nil, func(c *ftp.ServerConn) error {
		resp, err := c.RetrFrom(name, uint64(off))
		if err != nil {
			return err
		}
		n, err = io.ReadFull(resp, p)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			eof, err = true, nil
		}
		cerr := resp.Close()
		if err != nil {
			return err
		}
		// Cutting a transfer short makes the server answer 426 or 451:
		// expected, and the connection stays usable.
		var te *textproto.Error
		if cerr != nil && !(errors.As(cerr, &te) && !eof) {
			return cerr
		}
		return nil
	})
	if err == nil && eof {
		err = io.EOF
	}
	return n, err
}

// Stat asks SIZE, then MDTM when the server has it.
func (s *Storage) Stat(ctx context.Context, key string) (storage.Object, error) {
	name, err := storage.JoinKey(s.root, key)
	if err != nil {
		return storage.Object{}, err
	}
	o := storage.Object{Key: key}
	err = s.with(ctx, nil, func(c *ftp.ServerConn) error {
		size, err := c.FileSize(name)
		if err != nil {
			return err
		}
		o.Size = size
		if c.IsGetTimeSupported() {
			if t, err := c.GetTime(name); err == nil {
				o.ModTime = t.UTC()
			}
		}
		return nil
	})
	return o, err
}

// Close logs out of every idle connection.
func (s *Storage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.idle {
		c.c.Quit()
	}
	s.idle = nil
	return nil
}
