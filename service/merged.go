package service

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openpcrs/pcrs-indexer/indexer"
)

// The merged outputs (every storage's features in one collection) are
// built once each time a scan publishes or a storage goes, written to
// files beside a gzip copy, and served from those files: a request costs
// a file read, never a parse.

// mergedFile is one built merged output.
type mergedFile struct {
	plain, gz string // file paths
	hash      string // of the plain content: the strong ETag
	built     time.Time
}

type mergedOutputs struct {
	build sync.Mutex // one build at a time
	mu    sync.RWMutex
	files map[string]mergedFile // by output name
	// reads counts storage outputs read by builds, for tests.
	reads atomic.Int64
}

var mergedNames = []string{indexer.DallesFile, indexer.LivrablesFile}

func (s *Service) mergedDir() string { return filepath.Join(s.cfg.DataDir, "merged") }

// rebuildMerged rebuilds every merged output from the storages' files.
func (s *Service) rebuildMerged() error {
	m := &s.merged
	m.build.Lock()
	defer m.build.Unlock()
	if err := os.MkdirAll(s.mergedDir(), 0o700); err != nil {
		return err
	}
	records, err := s.list()
	if err != nil {
		return err
	}
	for _, name := range mergedNames {
		f, err := s.buildMerged(name, records)
		if err != nil {
			return fmt.Errorf("merging %s: %w", name, err)
		}
		m.mu.Lock()
		old, had := m.files[name]
		if m.files == nil {
			m.files = map[string]mergedFile{}
		}
		m.files[name] = f
		m.mu.Unlock()
		// Requests already serving the old files keep their descriptors.
		if had && old.plain != f.plain {
			_ = os.Remove(old.plain)
			_ = os.Remove(old.gz)
		}
	}
	return s.removeStaleMerged()
}

// removeStaleMerged removes files of earlier builds and runs (a crash
// between a rename and a removal leaves some).
func (s *Service) removeStaleMerged() error {
	entries, err := os.ReadDir(s.mergedDir())
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	s.merged.mu.RLock()
	for _, f := range s.merged.files {
		keep[filepath.Base(f.plain)], keep[filepath.Base(f.gz)] = true, true
	}
	s.merged.mu.RUnlock()
	for _, e := range entries {
		if !keep[e.Name()] {
			_ = os.Remove(filepath.Join(s.mergedDir(), e.Name()))
		}
	}
	return nil
}

// buildMerged writes name's merged output and its gzip copy, named after
// their content's hash.
func (s *Service) buildMerged(name string, records []Record) (mergedFile, error) {
	dir := s.mergedDir()
	plainTmp, err := os.CreateTemp(dir, ".build-*")
	if err != nil {
		return mergedFile{}, err
	}
	defer os.Remove(plainTmp.Name())
	defer plainTmp.Close()
	gzTmp, err := os.CreateTemp(dir, ".build-*")
	if err != nil {
		return mergedFile{}, err
	}
	defer os.Remove(gzTmp.Name())
	defer gzTmp.Close()

	sum := sha256.New()
	zw := gzip.NewWriter(gzTmp)
	bw := bufio.NewWriterSize(io.MultiWriter(plainTmp, zw, sum), 64<<10)
	if _, err := bw.WriteString(`{"type":"FeatureCollection","features":[`); err != nil {
		return mergedFile{}, err
	}
	first := true
	for _, rec := range records {
		if err := s.appendFeatures(bw, filepath.Join(s.outDir(rec.ID), name), &first); err != nil {
			s.log.Error("merging a storage's output: left out", "storage", rec.ID, "error", err)
		}
	}
	if _, err := bw.WriteString("\n]}\n"); err != nil {
		return mergedFile{}, err
	}
	if err := bw.Flush(); err != nil {
		return mergedFile{}, err
	}
	if err := zw.Close(); err != nil {
		return mergedFile{}, err
	}
	for _, f := range []*os.File{plainTmp, gzTmp} {
		if err := f.Sync(); err != nil {
			return mergedFile{}, err
		}
	}
	hash := hex.EncodeToString(sum.Sum(nil))[:32]
	base := strings.TrimSuffix(name, filepath.Ext(name))
	out := mergedFile{
		plain: filepath.Join(dir, base+"."+hash+".geojson"),
		gz:    filepath.Join(dir, base+"."+hash+".geojson.gz"),
		hash:  hash, built: time.Now(),
	}
	if err := os.Rename(gzTmp.Name(), out.gz); err != nil {
		return mergedFile{}, err
	}
	if err := os.Rename(plainTmp.Name(), out.plain); err != nil {
		return mergedFile{}, err
	}
	return out, nil
}

// appendFeatures copies one storage's features, one at a time: a build
// holds one feature in memory, never a whole file.
func (s *Service) appendFeatures(w *bufio.Writer, path string, first *bool) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // not scanned yet
	}
	if err != nil {
		return err
	}
	defer f.Close()
	s.merged.reads.Add(1)
	dec := json.NewDecoder(bufio.NewReader(f))
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return err
		}
		if key != "features" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		if err := expectDelim(dec, '['); err != nil {
			return err
		}
		var feature json.RawMessage
		var compact bytes.Buffer
		for dec.More() {
			if err := dec.Decode(&feature); err != nil {
				return err
			}
			if !*first {
				w.WriteByte(',')
			}
			*first = false
			w.WriteByte('\n')
			compact.Reset()
			if err := json.Compact(&compact, feature); err != nil {
				return err
			}
			w.Write(compact.Bytes())
		}
		return expectDelim(dec, ']')
	}
	return nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("want %q, found %v", want, tok)
	}
	return nil
}

// serveMerged serves name's merged output: gzip-compressed when the client
// accepts it, with a strong ETag (If-None-Match gives 304) and ranges.
func (s *Service) serveMerged(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.merged.mu.RLock()
		m, ok := s.merged.files[name]
		s.merged.mu.RUnlock()
		if !ok {
			fail(w, http.StatusServiceUnavailable, "the merged output is not built yet")
			return
		}
		path, etag := m.plain, `"`+m.hash+`"`
		h := w.Header()
		h.Set("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			// Another representation: another strong ETag.
			path, etag = m.gz, `"`+m.hash+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
		f, err := os.Open(path)
		if err != nil {
			fail(w, http.StatusInternalServerError, "merged output: %v", err)
			return
		}
		defer f.Close()
		h.Set("Content-Type", contentType(name))
		h.Set("ETag", etag)
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "", m.built, f)
	}
}

// acceptsGzip reads an Accept-Encoding header: gzip (or x-gzip, or *)
// listed without q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" && coding != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.ToLower(params), " ", "")
		if strings.HasPrefix(q, "q=0") && strings.Trim(strings.TrimPrefix(q, "q=0"), ".0") == "" {
			return false
		}
		return true
	}
	return false
}
