package service

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
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
	mux.HandleFunc("GET /dalles.geojson", s.merged(indexer.DallesFile))
	mux.HandleFunc("GET /livrables.geojson", s.merged(indexer.LivrablesFile))
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

// admin lets a call through with "Authorization: Token <admin token>",
// compared in constant time; without a configured token, never.
func (s *Service) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.AdminToken == "" {
			fail(w, http.StatusForbidden, "admin calls are disabled: no admin token is configured")
			return
		}
		given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Token ")
		if !ok || subtle.ConstantTimeCompare([]byte(given), []byte(s.cfg.AdminToken)) != 1 {
			fail(w, http.StatusUnauthorized, "admin token required")
			return
		}
		next(w, r)
	}
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
	rec := Record{URL: reg.URL, Name: reg.Name, Credentials: reg.Credentials, Livrable: reg.Livrable, Interval: interval, Created: time.Now().UTC()}
	if rec.Name == "" && rec.Livrable != nil {
		rec.Name = rec.Livrable.Nom
	}
	if rec.Name == "" {
		rec.Name = u.Host + u.Path
	}
	// The storage is checked by connecting and listing its root once.
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	st, err := s.cfg.Registry.Open(ctx, reg.URL, s.options(rec))
	if err == nil {
		_, err = st.List(ctx, "")
		st.Close()
	}
	if err != nil {
		fail(w, http.StatusUnprocessableEntity, "cannot reach the storage: %v", storage.Redact(err.Error()))
		return
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	rec.ID = hex.EncodeToString(id)
	if err := s.storages.Put(rec.ID, rec); err != nil {
		fail(w, http.StatusInternalServerError, "storing: %v", err)
		return
	}
	s.log.Info("storage registered", "storage", rec.ID, "source", storage.Redact(rec.URL))
	s.queue(rec.ID)
	writeJSON(w, http.StatusCreated, map[string]string{"id": rec.ID})
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
	v := view{ID: r.ID, URL: storage.Redact(r.URL), Name: r.Name, Interval: r.Interval.String(), Status: "idle",
		LastSuccess: r.LastSuccess, LastCounts: r.LastCounts, NextScan: r.NextScan}
	if r.LastError != "" {
		e := storage.Redact(r.LastError)
		v.LastError = &e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.running[r.ID]; ok {
		done, total := p.snapshot()
		v.Status, v.Progress = "scanning", &liveView{Done: done, Total: total}
	} else if s.queued[r.ID] || !r.NextScan.After(time.Now()) {
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
	if err := s.storages.Delete(rec.ID); err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	_ = s.store.Namespace("objects:" + rec.ID).Drop()
	_ = os.RemoveAll(s.outDir(rec.ID))
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
		w.Header().Set("Content-Type", contentType(name))
		_, _ = io.Copy(w, f)
	}
}

func contentType(name string) string {
	if strings.HasSuffix(name, ".geojson") {
		return "application/geo+json"
	}
	return "application/json"
}

// merged streams every storage's features as one collection.
func (s *Service) merged(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		records, err := s.list()
		if err != nil {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		w.Header().Set("Content-Type", contentType(name))
		bw := bufio.NewWriter(w)
		defer bw.Flush()
		bw.WriteString(`{"type":"FeatureCollection","features":[`)
		first := true
		for _, rec := range records {
			raw, err := os.ReadFile(filepath.Join(s.outDir(rec.ID), name))
			if err != nil {
				continue
			}
			var fc struct {
				Features []json.RawMessage `json:"features"`
			}
			if json.Unmarshal(raw, &fc) != nil {
				continue
			}
			for _, f := range fc.Features {
				if !first {
					bw.WriteByte(',')
				}
				first = false
				bw.WriteByte('\n')
				bw.Write(f)
			}
		}
		bw.WriteString("\n]}\n")
	}
}

func (s *Service) downloadToken(w http.ResponseWriter, r *http.Request) {
	if rec, ok := s.record(w, r); ok {
		expires := time.Now().Add(tokenLifetime)
		writeJSON(w, http.StatusOK, map[string]string{"token": s.signToken(rec.ID, expires), "expires": expires.UTC().Format(time.RFC3339)})
	}
}

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
	u, _ := storage.ParseLocation(rec.URL)
	if err := s.checkLocation(r.Context(), u); err != nil {
		fail(w, http.StatusForbidden, "%v", err)
		return
	}
	st, err := s.cfg.Registry.Open(r.Context(), rec.URL, s.options(*rec))
	if err != nil {
		fail(w, http.StatusBadGateway, "%v", storage.Redact(err.Error()))
		return
	}
	defer st.Close()
	obj, err := st.Stat(r.Context(), key)
	if errors.Is(err, storage.ErrNotFound) {
		fail(w, http.StatusNotFound, "no file %q", key)
		return
	}
	if err != nil {
		fail(w, http.StatusBadGateway, "%v", storage.Redact(err.Error()))
		return
	}
	w.Header().Set("Content-Disposition", "attachment; filename="+strconv.Quote(filepath.Base(key)))
	http.ServeContent(w, r, filepath.Base(key), obj.ModTime, &objectReader{ctx: r.Context(), st: st, key: key, size: obj.Size})
}

// objectReader is an io.ReadSeeker over a storage object, for
// http.ServeContent's ranges.
type objectReader struct {
	ctx  context.Context
	st   storage.Storage
	key  string
	size int64
	off  int64
}

func (o *objectReader) Read(p []byte) (int, error) {
	if o.off >= o.size {
		return 0, io.EOF
	}
	if len(p) > 1<<20 {
		p = p[:1<<20]
	}
	n, err := o.st.ReadAt(o.ctx, o.key, p, o.off)
	o.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
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
