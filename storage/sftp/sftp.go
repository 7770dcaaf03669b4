// Package sftp is the storage backend for SFTP servers: password, private
// key or agent authentication, host keys checked against known_hosts, and
// a small pool of sessions that reconnect when dropped.
package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Sessions is how many SSH connections a storage keeps; each carries many
// concurrent SFTP requests.
const Sessions = 4

// Storage serves the files below a folder of an SFTP server.
type Storage struct {
	addr   string
	root   string
	config *ssh.ClientConfig
	next   atomic.Uint64
	slots  [Sessions]slot
	agent  io.Closer
}

type slot struct {
	mu     sync.Mutex
	ssh    *ssh.Client
	client *sftp.Client
}

// Open is the registry's opener for sftp://user@host:port/path.
func Open(ctx context.Context, u *url.URL, opts storage.Options) (storage.Storage, error) {
	cfg, agentConn, err := ClientConfig(u, opts)
	if err != nil {
		return nil, err
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "22")
	}
	s := New(host, u.Path, cfg)
	s.agent = agentConn
	// Connect now: a wrong password or host key is the user's to fix, not a
	// reason to retry every tile.
	if _, err := s.slots[0].get(ctx, s); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// ClientConfig builds the SSH configuration: who, how, and which host keys
// are trusted. The agent connection, when there is one, stays open for the
// signatures of later handshakes; the caller closes it.
func ClientConfig(u *url.URL, opts storage.Options) (cfg *ssh.ClientConfig, agentConn io.Closer, err error) {
	defer func() {
		if err != nil && agentConn != nil {
			agentConn.Close()
			agentConn = nil
		}
	}()
	name := ""
	if u.User != nil {
		name = u.User.Username()
	}
	if name == "" {
		if cur, err := user.Current(); err == nil {
			name = cur.Username
		}
	}
	var auth []ssh.AuthMethod
	if opts.SFTPKey != "" {
		raw, err := os.ReadFile(opts.SFTPKey)
		if err != nil {
			return nil, nil, fmt.Errorf("--sftp-key: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(raw)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) && opts.Password != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase(raw, []byte(opts.Password))
		}
		if err != nil {
			return nil, nil, fmt.Errorf("--sftp-key %s: %w", opts.SFTPKey, err)
		}
		auth = append(auth, ssh.PublicKeys(signer))
	}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if c, err := net.Dial("unix", sock); err == nil {
			agentConn = c
			auth = append(auth, ssh.PublicKeysCallback(agent.NewClient(c).Signers))
		}
	}
	if opts.Password != "" && opts.SFTPKey == "" {
		pw := opts.Password
		auth = append(auth, ssh.Password(pw), ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
			answers := make([]string, len(questions))
			for i := range answers {
				answers[i] = pw
			}
			return answers, nil
		}))
	}
	if len(auth) == 0 {
		return nil, nil, errors.New("no SFTP credentials: give --sftp-key, a password (PCRS_INDEXER_PASSWORD or --password-file) or an SSH agent")
	}
	hostKeys := ssh.InsecureIgnoreHostKey()
	if !opts.SFTPInsecureIgnoreHostKey {
		file := opts.SFTPKnownHosts
		if file == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, nil, err
			}
			file = filepath.Join(home, ".ssh", "known_hosts")
		}
		cb, err := knownhosts.New(file)
		if err != nil {
			return nil, nil, fmt.Errorf("known hosts %s: %w (give --sftp-known-hosts, or --sftp-insecure-ignore-host-key to trust any host)", file, err)
		}
		hostKeys = cb
	}
	return &ssh.ClientConfig{User: name, Auth: auth, HostKeyCallback: hostKeys, Timeout: 20 * time.Second}, agentConn, nil
}

// New serves root on addr (host:port).
func New(addr, root string, cfg *ssh.ClientConfig) *Storage {
	if root == "" {
		root = "."
	}
	return &Storage{addr: addr, root: root, config: cfg}
}

func (sl *slot) get(ctx context.Context, s *Storage) (*sftp.Client, error) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.client != nil {
		return sl.client, nil
	}
	d := net.Dialer{Timeout: s.config.Timeout}
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, storage.Transient(fmt.Errorf("connecting to %s: %w", s.addr, err))
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, s.addr, s.config)
	if err != nil {
		conn.Close()
		// Authentication and host key failures are final.
		return nil, fmt.Errorf("SSH handshake with %s: %w", s.addr, err)
	}
	sc := ssh.NewClient(c, chans, reqs)
	client, err := sftp.NewClient(sc, sftp.UseConcurrentReads(true))
	if err != nil {
		sc.Close()
		return nil, storage.Transient(fmt.Errorf("starting SFTP on %s: %w", s.addr, err))
	}
	sl.ssh, sl.client = sc, client
	return client, nil
}

// drop closes a broken session so that the next request reconnects.
func (sl *slot) drop(client *sftp.Client) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.client == client && client != nil {
		sl.client.Close()
		sl.ssh.Close()
		sl.client, sl.ssh = nil, nil
	}
}

// with runs op on a session. A cancelled context closes the session to
// abort the request; a dropped session is reported transient and replaced.
func (s *Storage) with(ctx context.Context, op func(*sftp.Client) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sl := &s.slots[s.next.Add(1)%Sessions]
	client, err := sl.get(ctx, s)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- op(client) }()
	select {
	case <-ctx.Done():
		sl.drop(client)
		<-done
		return ctx.Err()
	case err = <-done:
	}
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, sftp.ErrSSHFxNoSuchFile) {
		return fmt.Errorf("%w: %v", storage.ErrNotFound, err)
	}
	if lost(err) {
		sl.drop(client)
		return storage.Transient(err)
	}
	return err
}

func lost(err error) bool {
	var ne net.Error
	return errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &ne) || strings.Contains(err.Error(), "connection lost")
}

// List reads one folder; cursor is its key ("" for the root).
func (s *Storage) List(ctx context.Context, cursor string) (storage.Page, error) {
	dir, err := storage.JoinKey(s.root, cursor)
	if err != nil {
		return storage.Page{}, err
	}
	var page storage.Page
	err = s.with(ctx, func(c *sftp.Client) error {
		entries, err := c.ReadDir(dir)
		if err != nil {
			return err
		}
		page = storage.Page{}
		for _, e := range entries {
			key := path.Join(cursor, e.Name())
			if e.Mode()&fs.ModeSymlink != 0 {
				if e, err = c.Stat(path.Join(dir, e.Name())); err != nil {
					continue // dangling
				}
			}
			switch {
			case e.IsDir():
				page.Dirs = append(page.Dirs, key)
			case e.Mode().IsRegular():
				page.Objects = append(page.Objects, storage.Object{Key: key, Size: e.Size(), ModTime: e.ModTime().UTC()})
			}
		}
		return nil
	})
	return page, err
}

// ReadAt opens the file, reads, and closes it.
func (s *Storage) ReadAt(ctx context.Context, key string, p []byte, off int64) (int, error) {
	name, err := storage.JoinKey(s.root, key)
	if err != nil {
		return 0, err
	}
	var n int
	var eof bool
	err = s.with(ctx, func(c *sftp.Client) error {
		f, err := c.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err = f.ReadAt(p, off)
		if err == io.EOF {
			eof = true
			return nil
		}
		return err
	})
	if err == nil && (eof || n < len(p)) {
		err = io.EOF
	}
	return n, err
}

// Stat describes one file.
func (s *Storage) Stat(ctx context.Context, key string) (storage.Object, error) {
	name, err := storage.JoinKey(s.root, key)
	if err != nil {
		return storage.Object{}, err
	}
	var o storage.Object
	err = s.with(ctx, func(c *sftp.Client) error {
		fi, err := c.Stat(name)
		if err != nil {
			return err
		}
		o = storage.Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime().UTC()}
		return nil
	})
	return o, err
}

// Close ends every session.
func (s *Storage) Close() error {
	for i := range s.slots {
		sl := &s.slots[i]
		sl.mu.Lock()
		if sl.client != nil {
			sl.client.Close()
			sl.ssh.Close()
			sl.client, sl.ssh = nil, nil
		}
		sl.mu.Unlock()
	}
	if s.agent != nil {
		s.agent.Close()
		s.agent = nil
	}
	return nil
}
