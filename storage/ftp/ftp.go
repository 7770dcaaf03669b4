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
	"net"
	"net/textproto"
	"net/url"
	"path"
	"sync"
	"time"

	"github.com/jlaffaye/ftp"
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

	mu   sync.Mutex
	idle []*conn
}

type conn struct {
	c   *ftp.ServerConn
	raw net.Conn // to abort a request on cancellation
}

// Open is the registry's opener for ftp:// and ftps:// locations. Without a
// user name the login is anonymous.
func Open(ctx context.Context, u *url.URL, opts storage.Options) (storage.Storage, error) {
	s := &Storage{addr: u.Host, root: u.Path, user: "anonymous", password: "anonymous"}
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
	cn := &conn{}
	opts := []ftp.DialOption{
		ftp.DialWithContext(ctx),
		ftp.DialWithTimeout(30 * time.Second),
		ftp.DialWithShutTimeout(10 * time.Second),
		ftp.DialWithDialFunc(func(network, address string) (net.Conn, error) {
			d := net.Dialer{Timeout: 15 * time.Second}
			if cn.raw != nil {
				// A data connection of a later request: the context that
				// opened the control connection may be long gone.
				return d.Dial(network, address)
			}
			c, err := d.DialContext(ctx, network, address)
			cn.raw = c // the control connection comes first
			return c, err
		}),
	}
	if s.tls != nil {
		opts = append(opts, ftp.DialWithExplicitTLS(s.tls))
	}
	c, err := ftp.Dial(s.addr, opts...)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, storage.Transient(fmt.Errorf("connecting to %s: %w", s.addr, err))
	}
	if err := c.Login(s.user, s.password); err != nil {
		c.Quit()
		// A refusal (530, or a USER rejected with a bare message) is final;
		// only a broken connection is worth another try.
		var ne net.Error
		var te *textproto.Error
		if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.As(err, &te) && te.Code >= 400 && te.Code < 500 {
			return nil, storage.Transient(fmt.Errorf("logging in to %s: %w", s.addr, err))
		}
		return nil, fmt.Errorf("logging in to %s as %s: %w", s.addr, s.user, err)
	}
	cn.c = c
	return cn, nil
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
	done := make(chan error, 1)
	go func() { done <- op(c.c) }()
	select {
	case <-ctx.Done():
		if c.raw != nil {
			c.raw.Close()
		}
		<-done
		return ctx.Err()
	case err = <-done:
	}
	s.put(c, err)
	if err == nil {
		return nil
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
			key := path.Join(cursor, e.Name)
			switch e.Type {
			case ftp.EntryTypeFolder:
				page.Dirs = append(page.Dirs, key)
			case ftp.EntryTypeFile:
				page.Objects = append(page.Objects, storage.Object{Key: key, Size: int64(e.Size), ModTime: e.Time.UTC()})
			case ftp.EntryTypeLink:
				page.Objects = append(page.Objects, storage.Object{Key: key, Size: storage.SizeUnknown})
			}
		}
		return nil
	})
	return page, err
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
