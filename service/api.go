package service

import (
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/openpcrs/pcrs-indexer/catalog"
	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/livrable"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxBody bounds request bodies: a registration is a few hundred bytes.
const maxBody = 64 << 10

// tokenLifetime is how long a download token lasts.
const tokenLifetime = time.Hour

// Handler is the HTTP API.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.mapPage)
	mux.HandleFunc("GET /assets/{name}", s.asset)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	mux.HandleFunc("POST /storages", s.admin(s.register))
	mux.HandleFunc("GET /storages", s.listStorages)
	mux.HandleFunc("GET /storages/{id}", s.getStorage)
	mux.HandleFunc("POST /storages/{id}/scan", s.admin(s.requestScan))
	mux.HandleFunc("DELETE /storages/{id}", s.admin(s.deleteStorage))
	mux.HandleFunc("GET /storages/{id}/dalles.geojson", s.output(indexer.DallesFile))
	mux.HandleFunc("GET /storages/{id}/livrables.geojson", s.output(indexer.LivrablesFile))
	mux.HandleFunc("GET /storages/{id}/report", s.output(indexer.ReportFile))
	mux.HandleFunc("GET /dalles.geojson", s.serveMerged(indexer.DallesFile))
	mux.HandleFunc("GET /livrables.geojson", s.serveMerged(indexer.LivrablesFile))
	mux.HandleFunc("POST /storages/{id}/download-token", s.admin(s.downloadToken))
	mux.HandleFunc("GET /storages/{id}/files/{path...}", s.download)
	return mux
}

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, apiError{Error: fmt.Sprintf(format, args...)})
}

// admin lets a call through with "Authorization: Bearer <admin token>"
// (or "Token <admin token>"), compared in constant time; without a
// configured token, never.
func (s *Service) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.AdminToken == "" {
			fail(w, http.StatusForbidden, "admin calls are disabled: no admin token is configured")
			return
		}
		given, ok := adminCredential(r.Header.Get("Authorization"))
		if !ok || subtle.ConstantTimeCompare([]byte(given), []byte(s.cfg.AdminToken)) != 1 {
			fail(w, http.StatusUnauthorized, "admin token required")
			return
		}
		next(w, r)
	}
}

// adminCredential is the token of an Authorization header, Bearer or
// Token scheme (scheme names are case-insensitive).
func adminCredential(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "Token")) {
		return "", false
	}
	return strings.TrimSpace(token), true
}

type registration struct {
	URL         string               `json:"url"`
	Name        string               `json:"name"`
	Credentials Credentials          `json:"credentials"`
	Livrable    *livrable.Attributes `json:"livrable"`
	Interval    string               `json:"interval"`
	// Catalog names the livrable in the PCRS exports; its attributes are
	// joined from there, those given in Livrable overriding them.
	Catalog *struct {
		Projet   string `json:"projet"`
		Livrable string `json:"livrable"`
	} `json:"catalog"`
}

func (s *Service) register(w http.ResponseWriter, r *http.Request) {
	var reg registration
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&reg); err != nil {
		fail(w, http.StatusBadRequest, "invalid registration: %v", err)
		return
	}
	interval := s.cfg.DefaultInterval
	if reg.Interval != "" {
		d, err := time.ParseDuration(reg.Interval)
		if err != nil || d < time.Minute {
			fail(w, http.StatusBadRequest, "interval %q: a duration of at least 1m, such as 24h", reg.Interval)
			return
		}
		interval = d
	}
	if reg.Livrable != nil {
		if err := reg.Livrable.Validate(); err != nil {
			fail(w, http.StatusBadRequest, "livrable: %v", err)
			return
		}
	}
	if reg.Catalog != nil {
		if s.cfg.Catalog == "" {
			fail(w, http.StatusBadRequest, "catalog: this service has no catalog configured (--catalog)")
			return
		}
		c, err := catalog.Load(r.Context(), s.cfg.Catalog, nil)
		if err != nil {
			fail(w, http.StatusBadGateway, "catalog: %v", err)
			return
		}
		attrs, err := c.Attributes(reg.Catalog.Projet, reg.Catalog.Livrable)
		if err != nil {
			fail(w, http.StatusBadRequest, "catalog: %v", err)
			return
		}
		reg.Livrable = livrable.Merge(attrs, reg.Livrable)
	}
	u, err := storage.ParseLocation(reg.URL)
	if err != nil || reg.URL == "" || !strings.Contains(reg.URL, "://") {
		fail(w, http.StatusBadRequest, "url: a storage URL (https://, s3://, sftp://, ftp://) is required")
		return
	}
	if err := s.checkLocation(r.Context(), u); err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	if !reg.Credentials.empty() && s.sealer == nil {
		fail(w, http.StatusBadRequest, "credentials: %v", ErrNoSecretKey)
		return
	}
	rec := Record{URL: reg.URL, Name: reg.Name, Credentials: reg.Credentials, Livrable: reg.Livrable, Interval: interval, Created: time.Now().UTC()}
	scrub := scrubber(rec)
	if rec.Name == "" && rec.Livrable != nil {
		rec.Name = rec.Livrable.Nom
	}
	if rec.Name == "" {
		rec.Name = strings.TrimPrefix(shown(u.Scheme+"://"+u.Host+u.Path), u.Scheme+"://")
	}
	// The storage is checked by connecting and listing its root once.
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	st, err := s.openComposed(ctx, rec, u.Scheme)
	if err == nil {
		_, err = st.List(ctx, "")
		st.Close()
	}
	if err != nil {
		fail(w, http.StatusUnprocessableEntity, "cannot reach the storage: %v", scrub(err.Error()))
		return
	}
	s.registerMu.Lock()
	defer s.registerMu.Unlock()
	if existing, err := s.registered(rec.URL); err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	} else if existing != "" {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "this location is already registered", "id": existing})
		return
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	rec.ID = hex.EncodeToString(id)
	if err := s.put(&rec); err != nil {
		fail(w, http.StatusInternalServerError, "storing: %v", err)
		return
	}
	s.log.Info("storage registered", "storage", rec.ID, "source", shown(rec.URL))
	s.queue(rec.ID)
	writeJSON(w, http.StatusCreated, map[string]string{"id": rec.ID})
}

// registered is the id of the storage already registered at location,
// whatever its credentials, letter case of the host or trailing slash.
func (s *Service) registered(location string) (string, error) {
	records, err := s.list()
	if err != nil {
		return "", err
	}
	want := sameKey(location)
	for _, r := range records {
		if sameKey(r.URL) == want {
			return r.ID, nil
		}
	}
	return "", nil
}

// sameKey is a location reduced to what names the data: scheme, host and
// path, without credentials, query or trailing slash.
func sameKey(location string) string {
	u, err := url.Parse(location)
	if err != nil || u.Scheme == "" {
		return strings.TrimRight(location, "/")
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + "/" + strings.Trim(path.Clean("/"+u.Path), "/")
}

// view is a storage as the API shows it: never its credentials.
type view struct {
	ID          string     `json:"id"`
	URL         string     `json:"url"`
	Name        string     `json:"name"`
	Interval    string     `json:"interval"`
	Status      string     `json:"status"`
	Progress    *liveView  `json:"progress,omitempty"`
	LastSuccess *time.Time `json:"lastSuccessfulScan"`
	LastError   *string    `json:"lastError"`
	LastCounts  *Counts    `json:"lastCounts"`
	NextScan    time.Time  `json:"nextScan"`
}

type liveView struct {
	Done  int `json:"done"`
	Total int `json:"total"`
}

func (s *Service) view(r Record) view {
	v := view{ID: r.ID, URL: shown(r.URL), Name: r.Name, Interval: r.Interval.String(), Status: "idle",
		LastSuccess: r.LastSuccess, LastCounts: r.LastCounts, NextScan: r.NextScan}
	if r.LastError != "" {
		e := scrubber(r)(r.LastError)
		v.LastError = &e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, queued := s.queued[r.ID]
	if ru, ok := s.running[r.ID]; ok {
		done, total := ru.progress.snapshot()
		v.Status, v.Progress = "scanning", &liveView{Done: done, Total: total}
	} else if queued || !r.NextScan.After(time.Now()) {
		v.Status = "queued"
	}
	return v
}

func (s *Service) listStorages(w http.ResponseWriter, _ *http.Request) {
	records, err := s.list()
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	out := make([]view, 0, len(records))
	for _, r := range records {
		out = append(out, s.view(r))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) record(w http.ResponseWriter, r *http.Request) (*Record, bool) {
	rec, err := s.get(r.PathValue("id"))
	if errors.Is(err, errNotFound) {
		fail(w, http.StatusNotFound, "no storage %q", r.PathValue("id"))
		return nil, false
	}
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return nil, false
	}
	return rec, true
}

func (s *Service) getStorage(w http.ResponseWriter, r *http.Request) {
	if rec, ok := s.record(w, r); ok {
		writeJSON(w, http.StatusOK, s.view(*rec))
	}
}

func (s *Service) requestScan(w http.ResponseWriter, r *http.Request) {
	if rec, ok := s.record(w, r); ok {
		s.queue(rec.ID)
		writeJSON(w, http.StatusAccepted, s.view(*rec))
	}
}

func (s *Service) deleteStorage(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.record(w, r)
	if !ok {
		return
	}
	// The scan goes first: once it has ended nothing writes the
	// storage's state or outputs, and none starts again.
	s.stop(rec.ID)
	if err := s.storages.Delete(rec.ID); err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	if err := s.store.Namespace("objects:" + rec.ID).Drop(); err != nil {
		fail(w, http.StatusInternalServerError, "dropping the state: %v", err)
		return
	}
	if err := os.RemoveAll(s.outDir(rec.ID)); err != nil {
		fail(w, http.StatusInternalServerError, "removing the outputs: %v", err)
		return
	}
	if err := s.rebuildMerged(); err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	s.metrics.Forget(rec.ID)
	s.log.Info("storage deleted", "storage", rec.ID)
	w.WriteHeader(http.StatusNoContent)
}

// output serves one of the last successful scan's outputs.
func (s *Service) output(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec, ok := s.record(w, r)
		if !ok {
			return
		}
		f, err := os.Open(filepath.Join(s.outDir(rec.ID), name))
		if err != nil {
			fail(w, http.StatusNotFound, "storage %s has no successful scan yet", rec.ID)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		serveOutput(w, r, name, f, fi)
	}
}

// serveOutput sends a storage's output with a strong ETag and, to a client
// taking gzip, compressed (a 100,000-tile dalles.geojson shrinks about
// tenfold). Outputs are replaced by rename, never rewritten in place: size
// and modification time tell one version from the next. A ranged request
// gets the plain bytes.
func serveOutput(w http.ResponseWriter, r *http.Request, name string, f *os.File, fi os.FileInfo) {
	h := w.Header()
	etag := fmt.Sprintf(`"%x-%x`, fi.Size(), fi.ModTime().UnixNano())
	h.Set("Vary", "Accept-Encoding")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Type", contentType(name))
	if r.Header.Get("Range") != "" || !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("ETag", etag+`"`)
		http.ServeContent(w, r, "", fi.ModTime(), f)
		return
	}
	etag += `-gz"`
	h.Set("ETag", etag)
	if matchesETag(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Encoding", "gzip")
	if r.Method == http.MethodHead {
		return
	}
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if _, err := io.Copy(gz, f); err != nil {
		return // the client went away: nothing left to tell it
	}
	_ = gz.Close()
}

// matchesETag says whether an If-None-Match header names etag (or *).
func matchesETag(header, etag string) bool {
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimPrefix(strings.TrimSpace(part), "W/")
		if part == etag || part == "*" {
			return true
		}
	}
	return false
}

func contentType(name string) string {
	if strings.HasSuffix(name, ".geojson") {
		return "application/geo+json"
	}
	return "application/json"
}

func (s *Service) downloadToken(w http.ResponseWriter, r *http.Request) {
	if rec, ok := s.record(w, r); ok {
		expires := time.Now().Add(tokenLifetime)
		writeJSON(w, http.StatusOK, map[string]string{"token": s.signToken(rec.ID, expires), "expires": expires.UTC().Format(time.RFC3339)})
	}
}

// maxRanges bounds the ranges of one download request; more are ignored
// (RFC 9110 lets a server send the whole file instead), so that a request
// listing thousands of ranges cannot turn into thousands of upstream reads.
const maxRanges = 16

// download streams a file of the storage through the service, with Range
// support, for a valid token.
func (s *Service) download(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.record(w, r)
	if !ok {
		return
	}
	if err := s.checkToken(rec.ID, r.URL.Query().Get("token"), time.Now()); err != nil {
		fail(w, http.StatusForbidden, "%v", err)
		return
	}
	key := r.PathValue("path")
	if _, err := storage.JoinKey("/", key); err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	u, err := storage.ParseLocation(rec.URL)
	if err != nil {
		fail(w, http.StatusBadGateway, "%v", scrubber(*rec)(err.Error()))
		return
	}
	if err := s.checkLocation(r.Context(), u); err != nil {
		fail(w, http.StatusForbidden, "%v", err)
		return
	}
	if u.Scheme == "file" {
		if err := inRoot(filepath.FromSlash(u.Path), key); err != nil {
			fail(w, http.StatusForbidden, "%v", err)
			return
		}
	}
	st, err := s.openComposed(r.Context(), *rec, u.Scheme)
	if err != nil {
		fail(w, http.StatusBadGateway, "%v", scrubber(*rec)(err.Error()))
		return
	}
	defer st.Close()
	obj, err := st.Stat(r.Context(), key)
	if errors.Is(err, storage.ErrNotFound) {
		fail(w, http.StatusNotFound, "no file %q", key)
		return
	}
	if err != nil {
		fail(w, http.StatusBadGateway, "%v", scrubber(*rec)(err.Error()))
		return
	}
	if countRanges(r.Header.Get("Range")) > maxRanges {
		r.Header.Del("Range")
	}
	w.Header().Set("Content-Type", "application/octet-stream") // no sniffing read
	w.Header().Set("Content-Disposition", "attachment; filename="+strconv.Quote(filepath.Base(key)))
	http.ServeContent(w, r, "", obj.ModTime, &objectReader{ctx: r.Context(), st: st, key: key, size: obj.Size})
}

// ErrOutsideRoot is a file storage's key that resolves, through symbolic
// links, outside the storage's folder.
var ErrOutsideRoot = errors.New("the file is outside the storage's folder")

// inRoot checks that key, links followed, stays below root: os.Root
// refuses any path that escapes it.
//
// TODO(storage-walk): the local backend itself should read through an
// os.Root, which also closes the window between this check and its read.
func inRoot(root, key string) error {
	rt, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrOutsideRoot, err)
	}
	defer rt.Close()
	if _, err := rt.Stat(filepath.FromSlash(key)); err != nil {
		return fmt.Errorf("%w: %s", ErrOutsideRoot, key)
	}
	return nil
}

// countRanges counts the ranges of a Range header without parsing them.
func countRanges(header string) int {
	if header == "" {
		return 0
	}
	return strings.Count(header, ",") + 1
}

// readChunk is the most one upstream read fetches for a download: ranges
// that fall in the chunk already read cost nothing more.
const readChunk = 1 << 20

// objectReader is an io.ReadSeeker over a storage object, for
// http.ServeContent's ranges. It reads the object in aligned chunks and
// keeps the last one, so that near ranges share one upstream read.
type objectReader struct {
	ctx  context.Context
	st   storage.Storage
	key  string
	size int64
	off  int64

	buf    []byte
	bufOff int64 // offset of buf[0] in the object
}

func (o *objectReader) Read(p []byte) (int, error) {
	if o.off >= o.size {
		return 0, io.EOF
	}
	if o.buf == nil || o.off < o.bufOff || o.off >= o.bufOff+int64(len(o.buf)) {
		if err := o.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, o.buf[o.off-o.bufOff:])
	o.off += int64(n)
	return n, nil
}

// fill reads the chunk holding o.off.
func (o *objectReader) fill() error {
	start := o.off - o.off%readChunk
	n := min(int64(readChunk), o.size-start)
	if cap(o.buf) < int(n) {
		o.buf = make([]byte, n)
	}
	o.buf = o.buf[:n]
	got, err := o.st.ReadAt(o.ctx, o.key, o.buf, start)
	if err == io.EOF && int64(got) > o.off-start {
		err = nil // the object shrank: serve what is there
	}
	o.buf, o.bufOff = o.buf[:got], start
	if err != nil {
		return err
	}
	if o.off >= start+int64(got) {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func (o *objectReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		o.off = offset
	case io.SeekCurrent:
		o.off += offset
	case io.SeekEnd:
		o.off = o.size + offset
	}
	if o.off < 0 {
		return 0, errors.New("negative position")
	}
	return o.off, nil
}
