// Package storage is the one interface every backend (local folder, HTTP
// listing, S3, SFTP, FTP) implements, plus what wraps it: the recursive
// walker, decorators for retries, concurrency limits and request counting,
// and a registry that parses locations and strips their secrets.
//
// Listing is page-shaped on purpose: one call to List is one storage request
// (a directory read, a listing page, a ListObjectsV2 call). That lets the
// decorators count, retry and limit listing exactly like ranged reads,
// without any backend knowing about them.
package storage

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// Object is one listed file. Key is relative to the storage root, with '/'
// separators and no leading slash.
type Object struct {
	Key     string
	Size    int64
	ModTime time.Time // zero when the storage does not say
	ETag    string    // empty when the storage has none
}

// SizeUnknown marks an Object whose listing did not give an exact size.
const SizeUnknown = -1

// Page is the answer to one listing request.
type Page struct {
	// Objects listed; Size is SizeUnknown when the listing rounds sizes.
	Objects []Object
	// Dirs are cursors of sub-folders still to list (hierarchical backends).
	Dirs []string
	// Next continues this same listing (paginated backends); "" when done.
	Next string
}

// Storage is what a backend implements.
type Storage interface {
	// List answers one listing request. The walk starts at cursor "".
	List(ctx context.Context, cursor string) (Page, error)
	// ReadAt reads len(p) bytes at off, like io.ReaderAt: n < len(p) only
	// with an error, io.EOF when the object ends first.
	ReadAt(ctx context.Context, key string, p []byte, off int64) (int, error)
	// Stat describes one object. The scan calls it only for objects a
	// listing gave without an exact size (some web servers' listings).
	Stat(ctx context.Context, key string) (Object, error)
	Close() error
}

// Reasons callers branch on. Backends wrap their errors with these (%w) so
// decorators and the indexer need not know backend error types.
var (
	ErrNotFound = errors.New("object not found")
	// ErrTransient marks a failure worth retrying: a 5xx, a 429, a reset
	// connection, a dropped session, a timeout.
	ErrTransient = errors.New("transient storage failure")
	// ErrUnsupported is returned by the registry for unknown schemes.
	ErrUnsupported = errors.New("unsupported storage location")
)

// Transient wraps err so that errors.Is(err, ErrTransient) holds.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return transientError{err}
}

type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() []error {
	return []error{e.err, ErrTransient}
}

// JoinKey joins a key to a backend's root folder, refusing keys that are
// not clean relative paths: nothing may reach outside the root.
func JoinKey(root, key string) (string, error) {
	clean := path.Clean("/" + key)
	if key != "" && (clean != "/"+strings.TrimSuffix(key, "/") || strings.Contains(key, "\\")) {
		return "", fmt.Errorf("%w: key %q is not a clean relative path", ErrNotFound, key)
	}
	return path.Join(root, clean), nil
}
