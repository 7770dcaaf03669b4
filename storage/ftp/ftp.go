// Package ftp is the storage backend for FTP and FTPS (explicit TLS)
// servers: anonymous or password login, passive mode, ranged reads with
// REST, one connection per concurrent request, reconnection on failure.
package ftp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
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
	raw net.Conn

	mu   sync.Mutex
	ctx  context.Context
	data net.Conn
}

// begin makes ctx the request in flight.
func (c *conn) begin(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ctx, c.data = ctx, nil
}

// end forgets the request in flight.
func (c *conn) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ctx, c.data = nil, nil
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
// through the guard all the same.
func (c *conn) dialData(s *Storage, network, addr string) (net.Conn, error) {
	c.mu.Lock()
	ctx := c.ctx
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
	c.data = d
	return d, nil
}

// handshakeTimeout bounds the connection, greeting, TLS and login of a new
// control connection, and the connection of a data channel.
var handshakeTimeout = 30 * time.Second

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
		s.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
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
	raw, err := s.guard.DialContext(dctx, "tcp", s.addr)
	if err != nil {
		return nil, s.failed(ctx, "connecting to", err)
	}
	if err := raw.SetDeadline(deadline); err != nil {
		raw.Close()
		return nil, storage.Transient(err)
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	cn := &conn{raw: raw}
	control := raw // handed to the library once, as its first dial
	opts := []ftp.DialOption{
		ftp.DialWithShutTimeout(10 * time.Second),
		ftp.DialWithDialFunc(func(network, address string) (net.Conn, error) {
			if c := control; c != nil {
				control = nil
				return c, nil
			}
			return cn.dialData(s, network, address)
		}),
	}
	if s.tls != nil {
		opts = append(opts, ftp.DialWithExplicitTLS(s.tls))
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
	if err := cn.raw.SetDeadline(time.Time{}); err != nil {
		c.Quit()
		return nil, storage.Transient(err)
	}
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
func (s *Storage) with(ctx context.Context, op func(*ftp.ServerConn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := s.get(ctx)
	if err != nil {
		return err
	}
	c.begin(ctx)
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
	if err == nil {
		return nil
	}
	if errors.Is(err, netguard.ErrRefused) {
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
	err = s.with(ctx, func(c *ftp.ServerConn) error {
		entries, err := c.List(dir)
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
	err = s.with(ctx, func(c *ftp.ServerConn) error {
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
	err = s.with(ctx, func(c *ftp.ServerConn) error {
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
