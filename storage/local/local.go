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
	"strings"

	"github.com/openpcrs/pcrs-indexer/storage"
)

// Storage serves the files below one folder.
type Storage struct {
	root string
}

// New opens the folder root, which must exist.
func New(root string) (*Storage, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a folder", root)
	}
	return &Storage{root: root}, nil
}

// Open is the registry's opener for file:// locations.
func Open(_ context.Context, u *url.URL, _ storage.Options) (storage.Storage, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("file URL with host %q: only local paths are supported", u.Host)
	}
	return New(filepath.FromSlash(u.Path))
}

// List reads one folder; cursor is its path relative to the root.
func (s *Storage) List(ctx context.Context, cursor string) (storage.Page, error) {
	if err := ctx.Err(); err != nil {
		return storage.Page{}, err
	}
	dir, err := s.resolve(cursor)
	if err != nil {
		return storage.Page{}, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return storage.Page{}, mapErr(err)
	}
	var page storage.Page
	for _, e := range entries {
		key := path.Join(cursor, e.Name())
		info, err := e.Info()
		if err != nil {
			continue // vanished between ReadDir and Info
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			// Follow links to files and folders; a dangling link is no
			// object, and a link back to an ancestor would never end.
			target := filepath.Join(dir, e.Name())
			if info, err = os.Stat(target); err != nil || (info.IsDir() && isAncestorLink(dir, target)) {
				continue
			}
		}
		switch {
		case info.IsDir():
			page.Dirs = append(page.Dirs, key)
		case info.Mode().IsRegular():
			page.Objects = append(page.Objects, storage.Object{Key: key, Size: info.Size(), ModTime: info.ModTime().UTC()})
		}
	}
	return page, nil
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

// resolve maps a key to a path, refusing anything that would leave the root.
func (s *Storage) resolve(key string) (string, error) {
	p, err := storage.JoinKey("/", key)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(p)), nil
}

func isAncestorLink(dir, link string) bool {
	realDir, err1 := filepath.EvalSymlinks(dir)
	realTarget, err2 := filepath.EvalSymlinks(link)
	if err1 != nil || err2 != nil {
		return true
	}
	rel, err := filepath.Rel(realTarget, realDir)
	return err == nil && !strings.HasPrefix(rel, "..")
}

func mapErr(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %v", storage.ErrNotFound, err)
	}
	return err
}
