// Package local is the storage backend for a local or mounted folder.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/openpcrs/pcrs-indexer/storage"
)

// Storage serves the files below one folder.
type Storage struct {
	root string
	real string // root with its links resolved: what "inside" means
}

// maxDirEntries bounds one folder's listing: a million names is already far
// beyond any delivery, and ReadDir holds them all.
const maxDirEntries = 1 << 20

// New opens the folder root, which must exist.
func New(root string) (*Storage, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a folder", root)
	}
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	return &Storage{root: root, real: real}, nil
}

// Open is the registry's opener for file:// locations.
func Open(_ context.Context, u *url.URL, _ storage.Options) (storage.Storage, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("file URL with host %q: only local paths are supported", u.Host)
	}
	return New(filepath.FromSlash(u.Path))
}

// List reads one folder; cursor is its path relative to the root. Links are
// followed inside the root only; a folder that is one of its own ancestors
// (by device and inode: a link, a bind mount) is reported, not entered.
func (s *Storage) List(ctx context.Context, cursor string) (storage.Page, error) {
	if err := ctx.Err(); err != nil {
		return storage.Page{}, err
	}
	dir, err := s.resolve(cursor)
	if err != nil {
		return storage.Page{}, err
	}
	above, err := s.ancestors(cursor)
	if err != nil {
		return storage.Page{}, err
	}
	f, err := os.Open(dir)
	if err != nil {
		return storage.Page{}, mapErr(err)
	}
	defer f.Close()
	entries, err := f.ReadDir(maxDirEntries + 1)
	if err != nil && err != io.EOF {
		return storage.Page{}, mapErr(err)
	}
	if len(entries) > maxDirEntries {
		return storage.Page{}, fmt.Errorf("%w: %s holds more than %d entries", storage.ErrTooLarge, cursor, maxDirEntries)
	}
	var page storage.Page
	for _, e := range entries {
		s.entry(&page, above, cursor, dir, e)
	}
	return page, nil
}

// entry adds one folder entry to page: as an object, a folder to list, or
// an object carrying why it cannot be served.
func (s *Storage) entry(page *storage.Page, above []fileID, cursor, dir string, e fs.DirEntry) {
	key := path.Join(cursor, e.Name())
	info, err := e.Info()
	if err != nil {
		return // vanished between ReadDir and Info
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		if info, err = s.followLink(filepath.Join(dir, e.Name())); err != nil {
			if info != nil && info.IsDir() {
				key += "/"
			}
			page.Objects = append(page.Objects, storage.Object{Key: key, Size: storage.SizeUnknown, Err: err})
			return
		}
	}
	if _, err := storage.JoinKey("/", key); err != nil {
		if info.IsDir() {
			key += "/"
		}
		page.Objects = append(page.Objects, storage.Object{Key: key, Size: storage.SizeUnknown, Err: err})
		return
	}
	switch {
	case info.IsDir():
		if id, ok := idOf(info); ok && slices.Contains(above, id) {
			page.Objects = append(page.Objects, storage.Object{Key: key + "/", Size: storage.SizeUnknown,
				Err: fmt.Errorf("%w: %s is one of its own ancestors", storage.ErrLoop, key)})
			return
		}
		page.Dirs = append(page.Dirs, key)
	case info.Mode().IsRegular():
		page.Objects = append(page.Objects, storage.Object{Key: key, Size: info.Size(), ModTime: info.ModTime().UTC()})
	}
}

// followLink describes a link's target, refusing targets outside the root.
// A non-nil info with an error describes a target outside.
func (s *Storage) followLink(link string) (fs.FileInfo, error) {
	real, err := filepath.EvalSymlinks(link)
	if err != nil {
		return nil, mapErr(fmt.Errorf("dangling link: %w", err))
	}
	info, err := os.Stat(real)
	if err != nil {
		return nil, mapErr(err)
	}
	if !within(s.real, real) {
		return info, fmt.Errorf("%w: %s links outside the storage root", storage.ErrBadKey, link)
	}
	return info, nil
}

// fileID names a file whatever the path it is reached by.
type fileID struct{ dev, ino uint64 }

func idOf(info fs.FileInfo) (fileID, bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino}, true
}

// ancestors identifies the folder at cursor and every folder above it up
// to the root.
func (s *Storage) ancestors(cursor string) ([]fileID, error) {
	var ids []fileID
	for p := cursor; ; p = path.Dir(p) {
		if p == "." {
			p = ""
		}
		name, err := s.resolve(p)
		if err != nil {
			return nil, err
		}
		info, err := os.Stat(name)
		if err != nil {
			return nil, mapErr(err)
		}
		if id, ok := idOf(info); ok {
			ids = append(ids, id)
		}
		if p == "" {
			return ids, nil
		}
	}
}

// ReadAt reads from one file. The file is opened per call: workers read
// different tiles, and a tile's header takes one or two calls.
func (s *Storage) ReadAt(ctx context.Context, key string, p []byte, off int64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	name, err := s.resolve(key)
	if err != nil {
		return 0, err
	}
	f, err := os.Open(name)
	if err != nil {
		return 0, mapErr(err)
	}
	defer f.Close()
	n, err := f.ReadAt(p, off)
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("reading %s: %w", key, err)
	}
	return n, err
}

// Stat describes one file.
func (s *Storage) Stat(ctx context.Context, key string) (storage.Object, error) {
	if err := ctx.Err(); err != nil {
		return storage.Object{}, err
	}
	name, err := s.resolve(key)
	if err != nil {
		return storage.Object{}, err
	}
	info, err := os.Stat(name)
	if err != nil {
		return storage.Object{}, mapErr(err)
	}
	if !info.Mode().IsRegular() {
		return storage.Object{}, fmt.Errorf("%w: %s is not a file", storage.ErrNotFound, key)
	}
	return storage.Object{Key: key, Size: info.Size(), ModTime: info.ModTime().UTC()}, nil
}

// Close releases nothing: files are opened per read.
func (s *Storage) Close() error { return nil }

// resolve maps a key to a path, refusing anything that would leave the
// root, by its name or through a link.
func (s *Storage) resolve(key string) (string, error) {
	p, err := storage.JoinKey("/", key)
	if err != nil {
		return "", err
	}
	name := filepath.Join(s.root, filepath.FromSlash(p))
	real, err := filepath.EvalSymlinks(name)
	if err != nil {
		return "", mapErr(err)
	}
	if !within(s.real, real) {
		return "", fmt.Errorf("%w: %w: %s leads outside the storage root", storage.ErrNotFound, storage.ErrBadKey, key)
	}
	return real, nil
}

// within says whether p is root or below it; both are resolved paths.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func mapErr(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %v", storage.ErrNotFound, err)
	}
	return err
}
