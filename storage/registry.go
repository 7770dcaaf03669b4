package storage

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/openpcrs/pcrs-indexer/internal/netguard"
)

// Options carries what a backend may need beyond its location. Secrets live
// here, never in the location string that gets logged.
type Options struct {
	Password string // SFTP, FTP and HTTP basic auth

	S3Endpoint  string
	S3PathStyle bool
	// S3AccessKey and S3SecretKey replace the AWS credential chain (the
	// service stores each storage's own keys).
	S3AccessKey, S3SecretKey string

	// S3Region overrides AWS_REGION and the shared configuration's region;
	// "" means us-east-1 when nothing else says.
	S3Region string

	SFTPKey                   string // a private key file
	SFTPKnownHosts            string
	SFTPInsecureIgnoreHostKey bool
	// SFTPPrivateKey is a private key's content (PEM or OpenSSH), for a
	// caller holding the key rather than a file (the service).
	SFTPPrivateKey string
	// SFTPKeyPassphrase decrypts SFTPKey or SFTPPrivateKey; "" falls back
	// to Password.
	SFTPKeyPassphrase string
	// SFTPHostKey pins the SFTP server's host key: its SHA256 fingerprint
	// ("SHA256:…", as ssh-keygen -l prints it) or the public key itself
	// (an authorized_keys or known_hosts line). known_hosts is then not
	// read.
	SFTPHostKey string

	// Guard, when set, checks every address a backend connects to (HTTP
	// and its redirects, S3, SFTP, FTP control and data connections) at
	// dial time, after resolution; HTTP proxies from the environment are
	// then not used, since they would connect where the guard cannot see.
	// nil connects anywhere (the CLI).
	Guard *netguard.Guard
	// Isolated keeps the process's own identity and settings out of the
	// storage (the service's case). The S3 backend ignores the environment
	// and the shared AWS configuration: endpoint, region and keys come only
	// from these options (no AWS_ENDPOINT_URL*, no credential chain, no
	// instance metadata, no HTTPS_PROXY), and the access is anonymous
	// without keys. The SFTP backend does not use the SSH agent nor
	// known_hosts: without SFTPHostKey, the host key the server presents is
	// refused with an error naming its fingerprint, for the owner to confirm.
	Isolated bool
}

// Opener opens a backend for a parsed location.
type Opener func(ctx context.Context, loc *url.URL, opts Options) (Storage, error)

// Registry maps URL schemes to backends. It is a value, not a global, so
// tests and the service choose which backends are allowed.
type Registry struct {
	openers map[string]Opener
}

// Register makes scheme (lower case, without "://") open with o.
func (r *Registry) Register(scheme string, o Opener) {
	if r.openers == nil {
		r.openers = map[string]Opener{}
	}
	r.openers[scheme] = o
}

// Schemes lists the registered schemes, sorted.
func (r *Registry) Schemes() []string {
	out := make([]string, 0, len(r.openers))
	for s := range r.openers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Open parses location and opens it with the backend of its scheme.
func (r *Registry) Open(ctx context.Context, location string, opts Options) (Storage, error) {
	u, err := ParseLocation(location)
	if err != nil {
		return nil, err
	}
	o, ok := r.openers[u.Scheme]
	if !ok {
		return nil, fmt.Errorf("%w: scheme %q (known: %s)", ErrUnsupported, u.Scheme, strings.Join(r.Schemes(), ", "))
	}
	s, err := o(ctx, u, opts)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", Redact(location), err)
	}
	return s, nil
}

// ParseLocation turns a SOURCE argument into a URL; a bare path is a local
// folder.
func ParseLocation(location string) (*url.URL, error) {
	if location == "" {
		return nil, fmt.Errorf("%w: empty location", ErrUnsupported)
	}
	if !strings.Contains(location, "://") {
		abs, err := filepath.Abs(location)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
		}
		return &url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}, nil
	}
	u, err := url.Parse(location)
	if err != nil {
		// url.Error quotes the whole input, password included.
		return nil, fmt.Errorf("%w: %q is not a valid URL", ErrUnsupported, Redact(location))
	}
	u.Scheme = strings.ToLower(u.Scheme)
	return u, nil
}

// tokenSchemes are those where userinfo without a password is a secret
// (a token, as portals hand out https://TOKEN@host/), not a login name.
var tokenSchemes = map[string]bool{"http": true, "https": true, "s3": true}

// Redacted replaces what Redact hides.
const Redacted = "REDACTED"

// Redact returns location fit for logs, reports and API answers: its
// password (and on web and S3 locations any userinfo), every query value
// and the fragment replaced by REDACTED. It errs on the side of hiding:
// whatever either of two readings takes for a secret is hidden. The first
// is lenient: the scheme ends at the first "://" and, once the text may
// hold userinfo, everything up to its last '@' counts as userinfo, since a
// password may hold unencoded '@', '/', '?', '#', ':' or ']'. The second is
// url.Parse's, the backends' own (through ParseLocation), for which "://"
// may come anywhere: "https:/h/x?token=t&next=https://y" has a query.
// What it returns is for people to read: a location to connect to or to
// give GDAL comes from ParseLocation, never from here.
func Redact(location string) string {
	if !strings.Contains(location, "://") {
		return location // a local path, as ParseLocation reads it
	}
	hide := lenientSecrets(location)
	if u, err := url.Parse(location); err == nil {
		hide = append(hide, parsedSecrets(location, u)...)
	}
	return hideSpans(location, hide)
}

// span is location[from:to], a secret. An empty one still gets REDACTED:
// "?key=" shows that the key was given, not whether its value was empty.
type span struct{ from, to int }

// lenientSecrets reads location with its scheme ending at the first
// "://"; the query and fragment are looked for after the userinfo.
func lenientSecrets(location string) []span {
	scheme, rest, _ := strings.Cut(location, "://")
	start := len(scheme) + len("://")
	var hide []span
	if mayHoldUserinfo(rest) {
		at := start + strings.LastIndex(rest, "@")
		hide = userinfoSecret(location[:at], start, scheme)
		start = at
	}
	return append(hide, querySecrets(location, start)...)
}

// parsedSecrets reads location as url.Parse did into u: it cuts the
// fragment and the query first, then the authority after "scheme://" (or
// a bare "//") up to the first '/', its userinfo up to its last '@'.
func parsedSecrets(location string, u *url.URL) []span {
	var hide []span
	if u.User != nil {
		start := len("//")
		if u.Scheme != "" {
			start += len(u.Scheme) + len(":")
		}
		authority := location[start:]
		if end := strings.IndexAny(authority, "/?#"); end >= 0 {
			authority = authority[:end]
		}
		hide = userinfoSecret(location[:start+strings.LastIndex(authority, "@")], start, u.Scheme)
	}
	return append(hide, querySecrets(location, 0)...)
}

// userinfoSecret is the secret of the userinfo text[start:]: its password
// or, on a token scheme, all of it.
func userinfoSecret(text string, start int, scheme string) []span {
	user, _, hasPass := strings.Cut(text[start:], ":")
	switch token := tokenSchemes[strings.ToLower(scheme)]; {
	case hasPass && !token:
		return []span{{start + len(user) + len(":"), len(text)}}
	case hasPass || token:
		return []span{{start, len(text)}}
	}
	return nil
}

// querySecrets are the query values and the fragment of location[start:],
// found as url.Parse finds them: the fragment after the first '#', the
// query after the first '?' before it.
func querySecrets(location string, start int) []span {
	var hide []span
	rest := location[start:]
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		if start+i+1 < len(location) {
			hide = append(hide, span{start + i + 1, len(location)})
		}
		rest = rest[:i]
	}
	q := strings.IndexByte(rest, '?')
	if q < 0 {
		return hide
	}
	from := start + q + 1
	for _, p := range strings.Split(rest[q+1:], "&") {
		if k, _, isPair := strings.Cut(p, "="); isPair {
			hide = append(hide, span{from + len(k) + len("="), from + len(p)})
		} else if p != "" {
			hide = append(hide, span{from, from + len(p)})
		}
		from += len(p) + len("&")
	}
	return hide
}

// hideSpans replaces each span of s by REDACTED, overlapping or touching
// spans (the two readings often find the same secret) by a single one.
func hideSpans(s string, hide []span) string {
	sort.Slice(hide, func(i, j int) bool { return hide[i].from < hide[j].from })
	var b strings.Builder
	done := 0
	for i := 0; i < len(hide); {
		from, to := hide[i].from, hide[i].to
		for i++; i < len(hide) && hide[i].from <= to; i++ {
			to = max(to, hide[i].to)
		}
		b.WriteString(s[done:from])
		b.WriteString(Redacted)
		done = to
	}
	b.WriteString(s[done:])
	return b.String()
}

// mayHoldUserinfo says whether the text after "://" may begin with
// userinfo: an '@' in what url.Parse takes for the authority, or, with an
// '@' further on, an authority that is no host[:port] (a "port" that is no
// number, or a dotless name with a port: user:12/34@host).
func mayHoldUserinfo(rest string) bool {
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	if strings.Contains(authority, "@") {
		return true
	}
	if !strings.Contains(rest[end:], "@") {
		return false
	}
	if strings.HasPrefix(authority, "[") {
		host, port, _ := strings.Cut(authority[1:], "]")
		return strings.Contains(host, "]") || (port != "" && !isPort(strings.TrimPrefix(port, ":")))
	}
	host, port, hasPort := strings.Cut(authority, ":")
	if !hasPort {
		return false
	}
	return !isPort(port) || (!strings.Contains(host, ".") && !strings.EqualFold(host, "localhost"))
}

func isPort(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
