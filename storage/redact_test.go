package storage

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// redactCases are locations where "://" is not where url.Parse ends the
// scheme, or where the lenient reading of the userinfo and url.Parse's
// disagree: the secrets url.Parse finds there must be hidden too.
var redactCases = []struct{ in, want string }{
	{"https:/h/x?token=t&next=https://y", "https:/h/x?token=REDACTED&next=REDACTED"},
	{"s3:bucket?x=https://secret@y", "s3:bucket?x=REDACTED"},
	{"ftp:/pub?x=sftp://u:p@h", "ftp:/pub?x=REDACTED"},
	{"https:?://tok@h", "https:?REDACTED"},
	{"HTTPS:h?token=s3cret#frag://x", "HTTPS:h?token=REDACTED#REDACTED"},
	// No scheme for url.Parse, yet an authority, or a query.
	{"//bob:s3cret@h/x?a=b://", "//bob:REDACTED@h/x?a=REDACTED"},
	{"/data/x?token=s3cret&u=ftp://y", "/data/x?token=REDACTED&u=REDACTED"},
	// The lenient reading takes "minio:9000/b?sig=ab" for userinfo;
	// url.Parse reads the query value "ab@cd", whose tail stayed.
	{"https://minio:9000/b?sig=ab@cd", "https://REDACTED"},
	{"sftp://u:pw@h/a?b=c&&d=#e", "sftp://u:REDACTED@h/a?b=REDACTED&&d=REDACTED#REDACTED"},
	// A local path for ParseLocation (no "://"), whatever it looks like.
	{"s3:bucket?token=abc", "s3:bucket?token=abc"},
	{"./a@b:c?d#e", "./a@b:c?d#e"},
}

func TestRedactAsURLParseReads(t *testing.T) {
	for _, tt := range redactCases {
		got := Redact(tt.in)
		if got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if problem := redactProblem(tt.in, got); problem != "" {
			t.Errorf("Redact(%q) = %q: %s", tt.in, got, problem)
		}
	}
}

// FuzzRedact: whatever the location, Redact leaves none of the secrets
// url.Parse reads in it, and a local path as it is.
func FuzzRedact(f *testing.F) {
	for _, tt := range redactCases {
		f.Add(tt.in)
	}
	for _, s := range []string{
		"sftp://bob:s3c@r/et@host/data",
		"ftp://bob:12/s3cret@host/dir",
		"https://me:abc@h/x/?a=1#f",
		"sftp://bob@[::1]:22/data/@x/",
		"s3://key@bucket/prefix?versionId=v",
		"x://h?k==REDACTED",
		"A://#\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, location string) {
		got := Redact(location)
		if problem := redactProblem(location, got); problem != "" {
			t.Errorf("Redact(%q) = %q: %s", location, got, problem)
		}
	})
}

// redactProblem says what is wrong with redacted, Redact's answer for
// location: a local path changed, or a secret url.Parse reads left. A
// secret is judged only where it can be told apart: found once in
// location (a copy in redacted can then only come from where it is a
// secret), REDACTED itself set aside as a NUL byte (a value "=REDACTED"
// is no leak), so a secret holding a NUL byte (a fragment may) is not
// judged.
func redactProblem(location, redacted string) string {
	if !strings.Contains(location, "://") {
		if redacted != location {
			return "a local path changed"
		}
		return "" // ParseLocation never gives it to url.Parse
	}
	masked := strings.ReplaceAll(redacted, Redacted, "\x00")
	for _, s := range secretsOf(location) {
		judged := s != "" && !strings.Contains(s, "\x00") && strings.Index(location, s) == strings.LastIndex(location, s)
		if judged && strings.Contains(masked, s) {
			return fmt.Sprintf("%q, which url.Parse reads as a secret, is left", s)
		}
	}
	return ""
}

// secretsOf lists what url.Parse reads as secret in location: the
// password (the user too on a token scheme), every query value and the
// fragment, as written in location, since that is the text Redact copies
// or not. url.Parse keeps the query as written; it decodes the userinfo,
// which is then as written only without any '%'.
func secretsOf(location string) []string {
	u, err := url.Parse(location)
	if err != nil {
		return nil // no backend reads it
	}
	var out []string
	if u.User != nil && !strings.Contains(location, "%") {
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
		if tokenSchemes[u.Scheme] {
			out = append(out, u.User.Username())
		}
	}
	for _, p := range strings.Split(u.RawQuery, "&") {
		if _, v, ok := strings.Cut(p, "="); ok {
			out = append(out, v)
		}
	}
	if _, fragment, ok := strings.Cut(location, "#"); ok {
		out = append(out, fragment)
	}
	return out
}
