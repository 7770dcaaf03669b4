package sftp

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Errors a caller can tell apart with errors.Is and errors.As, each saying
// what the owner must change.
var (
	// ErrNoCredentials: neither a private key, a password nor an agent.
	ErrNoCredentials = errors.New("no SFTP credentials")
	// ErrKeyUnreadable: the private key is no PEM or OpenSSH private key.
	ErrKeyUnreadable = errors.New("the SFTP private key is unreadable")
	// ErrKeyPassphrase: the private key is encrypted and its passphrase is
	// missing or wrong.
	ErrKeyPassphrase = errors.New("the SFTP private key's passphrase is missing or wrong")
	// ErrHostKeyInvalid: a pinned host key that is neither a SHA256
	// fingerprint nor a public key.
	ErrHostKeyInvalid = errors.New(`the host key is neither a SHA256 fingerprint ("SHA256:…", as ssh-keygen -l prints it) nor a public key line`)
)

// HostKeyUnknownError: nothing trusts the host key the server presented
// yet. Fingerprint is what the owner confirms.
type HostKeyUnknownError struct {
	Addr        string
	Type        string // the key's algorithm, "ssh-ed25519"
	Fingerprint string // "SHA256:…", as ssh-keygen -l prints it
	Key         string // the public key, authorized_keys form
	KnownHosts  string // the known_hosts file read, if one was
}

func (e *HostKeyUnknownError) Error() string {
	if e.KnownHosts != "" {
		line := e.Key
		if key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(e.Key)); err == nil {
			line = knownhosts.Line([]string{knownhosts.Normalize(e.Addr)}, key)
		}
		return fmt.Sprintf("the SFTP server %s presents host key %s (%s), which %s does not list: check it with the server's administrator, then add this line to it: %s",
			e.Addr, e.Fingerprint, e.Type, e.KnownHosts, line)
	}
	return fmt.Sprintf("the SFTP server %s presents host key %s (%s), not confirmed yet: check it with the server's administrator, then confirm it", e.Addr, e.Fingerprint, e.Type)
}

// HostKeyMismatchError: the server presented another host key than the
// one trusted. Either the server's key changed, or the connection is
// intercepted.
type HostKeyMismatchError struct {
	Addr       string
	Type       string   // the presented key's algorithm
	Presented  string   // its fingerprint
	Expected   []string // the fingerprints trusted
	KnownHosts string   // the known_hosts file read, if one was
}

func (e *HostKeyMismatchError) Error() string {
	where := "the one confirmed"
	if e.KnownHosts != "" {
		where = "the one " + e.KnownHosts + " lists"
	}
	return fmt.Sprintf("the SFTP server %s presented host key %s (%s), not %s (%s): if the server's key really changed, trust the new one; otherwise the connection may be intercepted",
		e.Addr, e.Presented, e.Type, where, strings.Join(e.Expected, ", "))
}

// AuthError: the server refused every credential offered (after the host
// key was accepted). Final: retrying changes nothing.
type AuthError struct {
	Addr    string
	Methods []string // the methods tried, as the protocol names them
	Err     error
}

func (e *AuthError) Error() string {
	tried := "none of the methods it accepts was offered"
	if len(e.Methods) > 0 {
		tried = "methods tried: " + strings.Join(e.Methods, ", ")
	}
	return fmt.Sprintf("the SFTP server %s refused the credentials (%s): check the user name, the password or private key, and that the key is authorized on the server (%v)",
		e.Addr, tried, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// HandshakeError: the SSH handshake failed before any host key was
// presented: no algorithm in common, or no SSH server at that port.
type HandshakeError struct {
	Addr string
	Err  error
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("SSH handshake with %s: %v", e.Addr, e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// Fingerprint is a key's SHA256 fingerprint as ssh-keygen -l prints it.
func Fingerprint(key ssh.PublicKey) string { return ssh.FingerprintSHA256(key) }

// HostKeyFingerprint reads a host key given by an owner: a SHA256
// fingerprint ("SHA256:…"), a public key ("ssh-ed25519 AAAA…", as in
// authorized_keys or a .pub file) or a known_hosts line (as ssh-keyscan
// prints it). It returns the fingerprint, and the key's algorithm when the
// key itself was given.
func HostKeyFingerprint(given string) (fingerprint, keyType string, err error) {
	given = strings.TrimSpace(given)
	if b64, ok := strings.CutPrefix(given, "SHA256:"); ok {
		raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
		if err != nil || len(raw) != 32 {
			return "", "", ErrHostKeyInvalid
		}
		return "SHA256:" + base64.RawStdEncoding.EncodeToString(raw), "", nil
	}
	if key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(given)); err == nil {
		return Fingerprint(key), key.Type(), nil
	}
	if _, _, key, _, _, err := ssh.ParseKnownHosts([]byte(given)); err == nil {
		return Fingerprint(key), key.Type(), nil
	}
	return "", "", ErrHostKeyInvalid
}

// hostKeyCallback is how the server's host key is checked: pinned,
// ignored, refused for confirmation (isolated), or against known_hosts.
func hostKeyCallback(pinned string, insecure, isolated bool, knownHostsFile func() (string, error)) (ssh.HostKeyCallback, error) {
	switch {
	case pinned != "":
		want, _, err := HostKeyFingerprint(pinned)
		if err != nil {
			return nil, err
		}
		return func(addr string, _ net.Addr, key ssh.PublicKey) error {
			if got := Fingerprint(key); got != want {
				return &HostKeyMismatchError{Addr: addr, Type: key.Type(), Presented: got, Expected: []string{want}}
			}
			return nil
		}, nil
	case insecure:
		return ssh.InsecureIgnoreHostKey(), nil
	case isolated:
		return func(addr string, _ net.Addr, key ssh.PublicKey) error {
			return unknown(addr, key, "")
		}, nil
	}
	file, err := knownHostsFile()
	if err != nil {
		return nil, err
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, fmt.Errorf("known hosts %s: %w (give --sftp-known-hosts, or --sftp-insecure-ignore-host-key to trust any host)", file, err)
	}
	return func(addr string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(addr, remote, key)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		if len(ke.Want) == 0 {
			return unknown(addr, key, file)
		}
		var expected []string
		for _, k := range ke.Want {
			if fp := Fingerprint(k.Key); !slices.Contains(expected, fp) {
				expected = append(expected, fp)
			}
		}
		return &HostKeyMismatchError{Addr: addr, Type: key.Type(), Presented: Fingerprint(key), Expected: expected, KnownHosts: file}
	}, nil
}

func unknown(addr string, key ssh.PublicKey, knownHosts string) error {
	return &HostKeyUnknownError{Addr: addr, Type: key.Type(), Fingerprint: Fingerprint(key),
		Key: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), KnownHosts: knownHosts}
}
