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
	"io"
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
	// Err is why this object alone could not be sized or addressed (a
	// failed Stat, a key the backend refuses, a folder link that loops or
	// leaves the root: then Key ends with "/"). Walk hands such objects
	// to its callback and goes on.
	Err error
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

// Writer is a Storage that outputs can also be written to (an s3://
// prefix): batch and merge publish through it, so that a remote output
// takes the same locations, credentials and endpoints as a remote source.
type Writer interface {
	// Put stores size bytes of body as key, replacing any object there.
	// The body is seekable so that a request can be signed and tried again.
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64) error
	// Delete removes key; a key already absent is no error.
	Delete(ctx context.Context, key string) error
}

// SizingReader is a Storage whose ranged reads also tell the object's
// total size (HTTP's Content-Range), so that an object listed without an
// exact size needs no Stat before its first read: Walker.NeedSize can then
// leave tiles unsized too, and Apache and lighttpd take one request a tile.
type SizingReader interface {
	// ReadAtSize is ReadAt that also returns the object's total size, or
	// SizeUnknown when the answer did not say.
	ReadAtSize(ctx context.Context, key string, p []byte, off int64) (n int, size int64, err error)
}

// SizesByRead says whether the backend below s's decorators tells an
// object's size with its reads (every decorator relays ReadAtSize, so
// asking s itself would always say yes).
func SizesByRead(s Storage) bool {
	for {
		d, ok := s.(interface{ Unwrap() Storage })
		if !ok {
			break
		}
		s = d.Unwrap()
	}
	_, ok := s.(SizingReader)
	return ok
}

// ReadAtSize reads like s.ReadAt, with the object's total size when s (or
// the backend below its decorators) can tell it, else SizeUnknown.
func ReadAtSize(ctx context.Context, s Storage, key string, p []byte, off int64) (int, int64, error) {
	if sr, ok := s.(SizingReader); ok {
		return sr.ReadAtSize(ctx, key, p, off)
	}
	n, err := s.ReadAt(ctx, key, p, off)
	return n, SizeUnknown, err
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
	// ErrBadKey marks a listed name the backend cannot address again (a
	// backslash in a local file name, a link leaving the root).
	ErrBadKey = errors.New("key the storage cannot address")
	// ErrNotAListing marks a page answered where a listing was expected
	// that does not read as one (a maintenance page, a login form): taken
	// for an empty folder it would publish nothing over something.
	ErrNotAListing = errors.New("not a listing")
	// ErrTooLarge marks a walk that went past one of its bounds (folders,
	// pages, objects, depth, a listing page's size): what it listed is
	// not the whole storage.
	ErrTooLarge = errors.New("storage too large")
	// ErrLoop marks a folder that contains itself (a symlink or a mount).
	ErrLoop = errors.New("folder loop")
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
		return "", fmt.Errorf("%w: %w: key %q is not a clean relative path", ErrNotFound, ErrBadKey, key)
	}
	return path.Join(root, clean), nil
}
