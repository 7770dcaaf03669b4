package storage

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
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

	SFTPKey                   string
	SFTPKnownHosts            string
	SFTPInsecureIgnoreHostKey bool
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

// secretParams are query parameters that carry credentials (pre-signed S3
// URLs, tokens appended by portals).
var secretParams = []string{"x-amz-signature", "x-amz-credential", "x-amz-security-token", "signature", "token", "access_token", "password", "secret", "key", "sig"}

// Redact returns location with its password and credential-bearing query
// parameters replaced, fit for logs, reports and API answers.
func Redact(location string) string {
	u, err := url.Parse(location)
	if err != nil || !strings.Contains(location, "://") {
		// Unparseable: cut anything that looks like userinfo.
		if i := strings.Index(location, "://"); i >= 0 {
			rest := location[i+3:]
			if at := strings.LastIndex(rest, "@"); at >= 0 {
				if slash := strings.Index(rest, "/"); slash < 0 || at < slash {
					return location[:i+3] + "REDACTED@" + rest[at+1:]
				}
			}
		}
		return location
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			for _, s := range secretParams {
				if strings.EqualFold(k, s) {
					q.Set(k, "REDACTED")
				}
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}
