package storage

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"sftp://bob:s3cret@host:22/data", "sftp://bob:REDACTED@host:22/data"},
		{"ftp://anonymous@host/pub", "ftp://anonymous@host/pub"},
		{"sftp://bob@host/data/@archive/", "sftp://bob@host/data/@archive/"},
		{"https://h/x/?token=abc&page=2", "https://h/x/?token=REDACTED&page=REDACTED"},
		{"https://h/x/?apikey=abc", "https://h/x/?apikey=REDACTED"},
		{"https://h/x/?abc", "https://h/x/?REDACTED"},
		{"https://h/x/#abc", "https://h/x/#REDACTED"},
		{"https://abc@h/x/", "https://REDACTED@h/x/"},
		{"https://me:abc@h/x/", "https://REDACTED@h/x/"},
		{"https://h/data/@x/", "https://h/data/@x/"},
		{"s3://bucket/prefix", "s3://bucket/prefix"},
		{"/data/tiles", "/data/tiles"},
		{"ftp://u:p%zz@host/", "ftp://u:REDACTED@host/"},
		// Unencoded '@' and '/' in a password: the last '@' ends it.
		{"sftp://bob:s3c@r/et@host/data", "sftp://bob:REDACTED@host/data"},
		{"ftp://bob:a/s3cret@host/data", "ftp://bob:REDACTED@host/data"},
		{"sftp://bob:s3c#ret@host/dir", "sftp://bob:REDACTED@host/dir"},
		{"https://bob:s3c?ret@host/dir", "https://REDACTED@host/dir"},
		{"sftp://bob:ab]/s3cret@host/dir", "sftp://bob:REDACTED@host/dir"},
		{"ftp://bob:12/s3cret@host/dir", "ftp://bob:REDACTED@host/dir"},
		{"HTTPS://abc@h/x/", "HTTPS://REDACTED@h/x/"},
		{"sftp://bob@[::1]:22/data", "sftp://bob@[::1]:22/data"},
		{"sftp://[::1]:22/data/@x/", "sftp://[::1]:22/data/@x/"},
		{"https://h.example:8443/data/@x/", "https://h.example:8443/data/@x/"},
	}
	for _, tt := range tests {
		got := Redact(tt.in)
		if got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
		for _, secret := range []string{"s3cret", "abc", "p%zz", "s3c@r/et"} {
			if strings.Contains(got, secret) {
				t.Errorf("Redact(%q) leaks %q: %q", tt.in, secret, got)
			}
		}
	}
}

func TestRegistryOpen(t *testing.T) {
	var r Registry
	var got *url.URL
	r.Register("file", func(_ context.Context, u *url.URL, _ Options) (Storage, error) {
		got = u
		return nil, nil
	})
	r.Register("sftp", func(context.Context, *url.URL, Options) (Storage, error) {
		return nil, errors.New("dial failed")
	})
	if _, err := r.Open(context.Background(), "/abs/folder", Options{}); err != nil {
		t.Fatal(err)
	}
	if got.Scheme != "file" || got.Path != "/abs/folder" {
		t.Errorf("bare path parsed as %v", got)
	}
	if _, err := r.Open(context.Background(), "gopher://x/", Options{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown scheme: err = %v, want ErrUnsupported", err)
	}
	_, err := r.Open(context.Background(), "sftp://u:hunter2@h/", Options{})
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "dial failed") {
		t.Errorf("backend error must be kept and redacted, got %v", err)
	}
}

func TestJoinKey(t *testing.T) {
	tests := []struct{ root, key, want string }{
		{"/data", "", "/data"},
		{"/data", "a/b.tif", "/data/a/b.tif"},
		{"/data", "dir with space/ü #1.jp2", "/data/dir with space/ü #1.jp2"},
		{"/", "sub/", "/sub"},
		{"/data", "../etc/passwd", ""},
		{"/data", "a/../../x", ""},
		{"/data", "/abs", ""},
		{"/data", `a\..\x`, ""},
	}
	for _, tt := range tests {
		got, err := JoinKey(tt.root, tt.key)
		if tt.want == "" {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("JoinKey(%q, %q) = %q, %v; want refused", tt.root, tt.key, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("JoinKey(%q, %q) = %q, %v; want %q", tt.root, tt.key, got, err, tt.want)
		}
	}
}
