// Package sftp is the storage backend for SFTP servers: password, private
// key or agent authentication, host keys pinned or checked against
// known_hosts, and a small pool of sessions that reconnect when dropped.
// Its failures are typed (AuthError, HostKeyMismatchError,
// HostKeyUnknownError, HandshakeError, ErrKey*) so that callers can say
// what the owner must change without reading messages.
package sftp

import (
	"context"
	"crypto/x509"
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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openpcrs/pcrs-indexer/internal/netguard"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Sessions is how many SSH connections a storage keeps; each carries many
// concurrent SFTP requests.
const Sessions = 4

// Storage serves the files below a folder of an SFTP server.
type Storage struct {
	addr   string
	root   string
	config *ssh.ClientConfig
	guard  *netguard.Guard
	next   atomic.Uint64
	slots  [Sessions]slot
	agent  io.Closer
}

// slot is one session. Connecting takes the slot's turn (a channel, so
// that waiting for it respects the waiter's context); mu only guards the
// fields and is never held across network I/O.
type slot struct {
	turn   chan struct{}
	mu     sync.Mutex
	ssh    *ssh.Client
	client *sftp.Client
	lists  *listBound // the client's listings
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
	s.guard = opts.Guard
	// Connect now: a wrong password or host key is the user's to fix, not a
	// reason to retry every tile.
	if _, _, err := s.slots[0].get(ctx, s); err != nil {
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
	signer, err := privateKey(opts)
	if err != nil {
		return nil, nil, err
	}
	if signer != nil {
		auth = append(auth, ssh.PublicKeys(signer))
	}
	// An isolated storage (the service's) never borrows the process's own
	// identity: no agent.
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" && !opts.Isolated {
		if c, err := net.Dial("unix", sock); err == nil {
			agentConn = c
			auth = append(auth, ssh.PublicKeysCallback(agent.NewClient(c).Signers))
		}
	}
	if opts.Password != "" && signer == nil {
		pw := opts.Password
		auth = append(auth, ssh.Password(pw), ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
			answers := make([]string, len(questions))
			for i := range answers {
				answers[i] = pw
			}
			return answers, nil
		}))
	}
	switch {
	case len(auth) == 0 && opts.Isolated:
		return nil, nil, ErrNoCredentials // the caller knows its own fields
	case len(auth) == 0:
		return nil, nil, fmt.Errorf("%w: give --sftp-key, a password (PCRS_INDEXER_PASSWORD or --password-file) or an SSH agent", ErrNoCredentials)
	}
	hostKeys, err := hostKeyCallback(opts.SFTPHostKey, opts.SFTPInsecureIgnoreHostKey, opts.Isolated, func() (string, error) {
		if opts.SFTPKnownHosts != "" {
			return opts.SFTPKnownHosts, nil
		}
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(home, ".ssh", "known_hosts"), nil
	})
	if err != nil {
		return nil, nil, err
	}
	return &ssh.ClientConfig{User: name, Auth: auth, HostKeyCallback: hostKeys, Timeout: 20 * time.Second}, agentConn, nil
}

// privateKey is the key to offer, from SFTPPrivateKey or the SFTPKey file,
// decrypted with SFTPKeyPassphrase (or Password); nil without one.
func privateKey(opts storage.Options) (ssh.Signer, error) {
	raw, from := []byte(opts.SFTPPrivateKey), "the SFTP private key"
	if len(raw) == 0 {
		if opts.SFTPKey == "" {
			return nil, nil
		}
		var err error
		if raw, err = os.ReadFile(opts.SFTPKey); err != nil {
			return nil, fmt.Errorf("--sftp-key: %w", err)
		}
		from = "--sftp-key " + opts.SFTPKey
	}
	passphrase := opts.SFTPKeyPassphrase
	if passphrase == "" {
		passphrase = opts.Password
	}
	signer, err := ssh.ParsePrivateKey(raw)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing) && passphrase != "":
		if r := kdfRounds(raw); r > maxKDFRounds {
			return nil, fmt.Errorf("%s: %w: encrypted with %d bcrypt rounds, at most %d (re-encrypt it: ssh-keygen -p -a 16)", from, ErrKeyUnreadable, r, maxKDFRounds)
		}
		signer, err = decrypted.signer(raw, []byte(passphrase))
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, fmt.Errorf("%s: %w", from, ErrKeyPassphrase)
		}
	case errors.As(err, &missing):
		return nil, fmt.Errorf("%s: %w", from, ErrKeyPassphrase)
	}
	if err != nil {
		// The parser's message may quote the key: never pass it on.
		return nil, fmt.Errorf("%s: %w", from, ErrKeyUnreadable)
	}
	return signer, nil
}

// New serves root on addr (host:port).
func New(addr, root string, cfg *ssh.ClientConfig) *Storage {
	if root == "" {
		root = "."
	}
	s := &Storage{addr: addr, root: root, config: cfg}
	for i := range s.slots {
		s.slots[i].turn = make(chan struct{}, 1)
	}
	return s
}

func (sl *slot) current() *sftp.Client {
	c, _ := sl.session()
	return c
}

func (sl *slot) session() (*sftp.Client, *listBound) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.client, sl.lists
}

// get returns the slot's session, connecting it if needed. Callers wait
// for a connection in progress only as long as their context allows.
func (sl *slot) get(ctx context.Context, s *Storage) (*sftp.Client, *listBound, error) {
	if c, lb := sl.session(); c != nil {
		return c, lb, nil
	}
	select {
	case sl.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	defer func() { <-sl.turn }()
	if c, lb := sl.session(); c != nil {
		return c, lb, nil // connected while we waited
	}
	sc, client, lb, err := s.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	sl.mu.Lock()
	sl.ssh, sl.client, sl.lists = sc, client, lb
	sl.mu.Unlock()
	return client, lb, nil
}

// connect dials, shakes hands and starts SFTP, all within the handshake
// timeout (config.Timeout) and the context: a server that accepts and
// then stays silent cannot hold the caller. The SFTP client reads and
// writes through a listBound, which bounds its listings.
func (s *Storage) connect(ctx context.Context) (*ssh.Client, *sftp.Client, *listBound, error) {
	timeout := s.config.Timeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	deadline := time.Now().Add(timeout)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := s.guard.DialContext(dctx, "tcp", s.addr)
	if err != nil {
		return nil, nil, nil, s.failed(ctx, err, storage.Transient(fmt.Errorf("connecting to %s: %w", s.addr, err)))
	}
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, nil, nil, storage.Transient(err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	// Which phase a failed handshake reached tells an authentication
	// refusal from the rest, whatever the library's message says.
	cfg := *s.config
	var hostKeyOK, authStarted atomic.Bool
	var tried []string
	cfg.HostKeyCallback = func(addr string, remote net.Addr, key ssh.PublicKey) error {
		err := s.config.HostKeyCallback(addr, remote, key)
		hostKeyOK.Store(err == nil)
		return err
	}
	if cfg.AuthCallback == nil {
		cfg.AuthCallback = func(c *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
			authStarted.Store(true)
			tried = c.TriedMethods
			return nil, nil
		}
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, s.addr, &cfg)
	if err != nil {
		stop()
		conn.Close()
		return nil, nil, nil, s.failed(ctx, err, handshakeErr(s.addr, err, hostKeyOK.Load(), authStarted.Load(), tried))
	}
	sc := ssh.NewClient(c, chans, reqs)
	lb := newListBound()
	client, err := startSFTP(sc, lb)
	if !stop() || err != nil {
		sc.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, nil, nil, s.failed(ctx, err, storage.Transient(fmt.Errorf("starting SFTP on %s: %w", s.addr, err)))
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		client.Close()
		sc.Close()
		return nil, nil, nil, storage.Transient(err)
	}
	return sc, client, lb, nil
}

// startSFTP is sftp.NewClient with the client's streams passed through
// lb: a session on the SSH connection, its "sftp" subsystem, and the
// session's stdout and stdin as the client's pipe (the remote stderr is
// discarded, as sftp.NewClient does by default).
func startSFTP(sc *ssh.Client, lb *listBound) (*sftp.Client, error) {
	sess, err := sc.NewSession()
	if err != nil {
		return nil, err
	}
	wr, err := sess.StdinPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	rd, err := sess.StdoutPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	if err := sess.RequestSubsystem("sftp"); err != nil {
		sess.Close()
		return nil, err
	}
	client, err := sftp.NewClientPipe(boundReader{rd, lb}, boundWriter{wr, lb}, sftp.UseConcurrentReads(true))
	if err != nil {
		sess.Close()
		return nil, err
	}
	return client, nil
}

// handshakeErr classifies a failed handshake. Host key and authentication
// failures are final; a silent or vanished server is transient.
func handshakeErr(addr string, err error, hostKeyOK, authStarted bool, tried []string) error {
	var unknown *HostKeyUnknownError
	var mismatch *HostKeyMismatchError
	switch {
	case errors.As(err, &unknown):
		return unknown
	case errors.As(err, &mismatch):
		return mismatch
	case lost(err):
		return storage.Transient(&HandshakeError{Addr: addr, Err: err})
	case hostKeyOK && authStarted:
		// Past the key exchange, the handshake only authenticates: whatever
		// ends it now (no method left, a failure where a method expected
		// another message, such as "unexpected message type 51 (expected
		// 60)", a disconnection after too many tries) is a refusal.
		var methods []string
		for _, m := range tried {
			if m != "none" && !slices.Contains(methods, m) {
				methods = append(methods, m)
			}
		}
		return &AuthError{Addr: addr, Methods: methods, Err: err}
	}
	return &HandshakeError{Addr: addr, Err: err}
}

// failed picks the error to return for a failed connection: the
// context's when it ended, the guard's refusal as final, else mapped.
func (s *Storage) failed(ctx context.Context, err, mapped error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, netguard.ErrRefused):
		return fmt.Errorf("connecting to %s: %w", s.addr, err)
	}
	return mapped
}

// drop closes a broken session so that the next request reconnects.
func (sl *slot) drop(client *sftp.Client) {
	sl.mu.Lock()
	if sl.client != client || client == nil {
		sl.mu.Unlock()
		return
	}
	sc := sl.ssh
	sl.client, sl.ssh, sl.lists = nil, nil, nil
	sl.mu.Unlock()
	// The connection first: closing SFTP on a live but stuck connection
	// could wait on the network.
	sc.Close()
	client.Close()
}

// with runs op on a session. A cancelled context closes the session to
// abort the request; a dropped session is reported transient and replaced.
func (s *Storage) with(ctx context.Context, op func(*sftp.Client, *listBound) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sl := &s.slots[s.next.Add(1)%Sessions]
	client, lb, err := sl.get(ctx, s)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- op(client, lb) }()
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
	if errors.Is(err, storage.ErrTooLarge) {
		return err // final, and the session is sound
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
	err = s.with(ctx, func(c *sftp.Client, lb *listBound) error {
		entries, err := lb.readDir(ctx, c, dir)
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
	err = s.with(ctx, func(c *sftp.Client, _ *listBound) error {
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
	err = s.with(ctx, func(c *sftp.Client, _ *listBound) error {
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
		sl.drop(sl.current())
	}
	if s.agent != nil {
		s.agent.Close()
		s.agent = nil
	}
	return nil
}
