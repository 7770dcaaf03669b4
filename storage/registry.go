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

	SFTPKey                   string
	SFTPKnownHosts            string
	SFTPInsecureIgnoreHostKey bool

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
	// without keys. The SFTP backend does not use the SSH agent.
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

// hasUserinfo says whether a location's text, authority being what url.Parse
// would take for it, carries userinfo: an '@' in the authority, or a "port"
// that is no number with an '@' further on (a password holding a '/').
func hasUserinfo(authority, rest string) bool {
	if strings.Contains(authority, "@") {
		return true
	}
	i := strings.LastIndex(authority, ":")
	if i < 0 || strings.HasSuffix(authority, "]") || !strings.Contains(rest, "@") {
		return false
	}
	for _, c := range authority[i+1:] {
		if c < '0' || c > '9' {
			return true
		}
	}
	return false
}

// tokenSchemes are those where userinfo without a password is a secret
// (a token, as portals hand out https://TOKEN@host/), not a login name.
var tokenSchemes = map[string]bool{"http": true, "https": true, "s3": true}

// Redacted replaces what Redact hides.
const Redacted = "REDACTED"

// Redact returns location fit for logs, reports and API answers: its
// password (and on web and S3 locations any userinfo), every query value
// and the fragment replaced by REDACTED. It does not trust url.Parse: a
// password with an unencoded '@' or '/' moves the authority's end, so once
// the authority holds an '@', everything up to the last '@' before the
// query counts as userinfo.
func Redact(location string) string {
	scheme, rest, ok := strings.Cut(location, "://")
	if !ok {
		return location // a local path
	}
	rest, frag, hasFrag := strings.Cut(rest, "#")
	rest, query, hasQuery := strings.Cut(rest, "?")
	if authority, _, _ := strings.Cut(rest, "/"); hasUserinfo(authority, rest) {
		at := strings.LastIndex(rest, "@")
		user, _, hasPass := strings.Cut(rest[:at], ":")
		switch {
		case hasPass && !tokenSchemes[strings.ToLower(scheme)]:
			rest = user + ":" + Redacted + rest[at:]
		case hasPass || tokenSchemes[strings.ToLower(scheme)]:
			rest = Redacted + rest[at:]
		}
	}
	out := scheme + "://" + rest
	if hasQuery {
		params := strings.Split(query, "&")
		for i, p := range params {
			if k, _, isPair := strings.Cut(p, "="); isPair {
				params[i] = k + "=" + Redacted
			} else if p != "" {
				params[i] = Redacted
			}
		}
		out += "?" + strings.Join(params, "&")
	}
	if hasFrag && frag != "" {
		out += "#" + Redacted
	}
	return out
}
