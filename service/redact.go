package service

import (
	"context"
	"log/slog"
	"net/url"
	"strings"

	"github.com/openpcrs/pcrs-indexer/storage"
)

// redacted replaces what the service never shows.
const redacted = storage.Redacted

// shown is a location as the service shows it (API answers, logs,
// outputs): storage.Redact's, without any userinfo at all. Stricter than
// storage.Redact, which keeps an SFTP or FTP login name: the service shows
// an owner's storage to anyone, and no part of its userinfo is the
// public's.
func shown(location string) string {
	r := storage.Redact(location)
	scheme, rest, ok := strings.Cut(r, "://")
	if !ok {
		return r // a local path
	}
	// Redact left at most a login name and REDACTED before the host.
	authority, _, _ := strings.Cut(rest, "/")
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		rest = storage.Redacted + rest[at:]
	}
	return scheme + "://" + rest
}

// minSecret is the shortest secret scrubbed from free text: shorter ones
// would mangle the text and protect nothing.
const minSecret = 3

// scrubber returns a function removing r's secrets from free text (an
// error message quoting the URL as a library saw it): its credentials, its
// userinfo and every query value, raw and decoded.
func scrubber(r Record) func(string) string {
	var secrets []string
	add := func(v string) {
		if len(v) >= minSecret {
			secrets = append(secrets, v)
			if d, err := url.QueryUnescape(v); err == nil && d != v && len(d) >= minSecret {
				secrets = append(secrets, d)
			}
			if e := url.QueryEscape(v); e != v {
				secrets = append(secrets, e)
			}
		}
	}
	add(r.Credentials.Password)
	add(r.Credentials.S3AccessKey)
	add(r.Credentials.S3SecretKey)
	add(r.Credentials.SFTPPrivateKey)
	add(r.Credentials.SFTPPassphrase)
	if _, rest, ok := strings.Cut(r.URL, "://"); ok {
		rest, _, _ = strings.Cut(rest, "#")
		rest, query, _ := strings.Cut(rest, "?")
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			user := rest[:at]
			add(user)
			name, pass, _ := strings.Cut(user, ":")
			add(name)
			add(pass)
		}
		for _, p := range strings.Split(query, "&") {
			if _, v, ok := strings.Cut(p, "="); ok {
				add(v)
			} else {
				add(p)
			}
		}
	}
	// Longest first, so that a secret containing another goes whole.
	for i := range secrets {
		for j := i + 1; j < len(secrets); j++ {
			if len(secrets[j]) > len(secrets[i]) {
				secrets[i], secrets[j] = secrets[j], secrets[i]
			}
		}
	}
	return func(text string) string {
		for _, sec := range secrets {
			text = strings.ReplaceAll(text, sec, redacted)
		}
		return text
	}
}

// scrubHandler removes a storage's secrets from every message and
// attribute logged during its scan, whatever logs them.
type scrubHandler struct {
	h     slog.Handler
	scrub func(string) string
}

func (h scrubHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h scrubHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h scrubHandler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = h.attr(a)
	}
	return scrubHandler{h.h.WithAttrs(clean), h.scrub}
}

func (h scrubHandler) WithGroup(name string) slog.Handler {
	return scrubHandler{h.h.WithGroup(name), h.scrub}
}

func (h scrubHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.scrub(v.String()))
	case slog.KindGroup:
		group := v.Group()
		clean := make([]any, len(group))
		for i, g := range group {
			clean[i] = h.attr(g)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.scrub(err.Error()))
		}
		if st, ok := v.Any().(interface{ String() string }); ok {
			return slog.String(a.Key, h.scrub(st.String()))
		}
	}
	return a
}
