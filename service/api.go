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
	"mime"
	"net"
	"net/http"
	"net/netip"
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
	"github.com/openpcrs/pcrs-indexer/storage/sftp"
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
	mux.HandleFunc("PATCH /storages/{id}", s.admin(s.patchStorage))
	mux.HandleFunc("DELETE /storages/{id}", s.admin(s.deleteStorage))
	mux.HandleFunc("GET /storages/{id}/dalles.geojson", s.output(indexer.DallesFile))
	mux.HandleFunc("GET /storages/{id}/livrables.geojson", s.output(indexer.LivrablesFile))
	mux.HandleFunc("GET /storages/{id}/dalles.fgb", s.output(indexer.DallesFGBFile)) // the map reads its view by ranges
	mux.HandleFunc("GET /storages/{id}/report", s.output(indexer.ReportFile))
	mux.HandleFunc("GET /dalles.geojson", s.serveMerged(indexer.DallesFile))
	mux.HandleFunc("GET /livrables.geojson", s.serveMerged(indexer.LivrablesFile))
	mux.HandleFunc("POST /storages/{id}/download-token", s.admin(s.downloadToken))
	mux.HandleFunc("GET /storages/{id}/files/{path...}", s.download)
	mux.HandleFunc("GET /storages/{id}/problemes.csv", s.problemsCSV)
	mux.HandleFunc("GET /storages/{id}/problems", s.problemsJSON)
	mux.HandleFunc("POST /storages/{id}/share", s.admin(s.shareLink))
	mux.HandleFunc("DELETE /storages/{id}/share", s.admin(s.revokeShare))
	mux.HandleFunc("POST /storages/{id}/download-links", s.downloadLinks)
	mux.HandleFunc("GET /livraisons/{id}", s.deliveryPage)
	return mux
}

// apiError is every error answer: a stable code, a sentence for the
// owner, and the technical detail (secrets removed).
type apiError struct {
	Problem
	Error string `json:"error"`
	// ID is the storage already registered at the location (409).
	ID string `json:"id,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// fail answers an error whose text is its own message, coded after the
// HTTP status.
func fail(w http.ResponseWriter, code int, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	writeJSON(w, code, apiError{Problem: Problem{Code: statusCode(code), Message: text}, Error: text})
}

// refuse answers a problem; detail is the technical text, secrets
// already removed.
func refuse(w http.ResponseWriter, status int, p Problem, detail string) {
	writeJSON(w, status, apiError{Problem: p, Error: detail})
}

// statusCode is the code of an error told by its HTTP status alone.
func statusCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusServiceUnavailable:
		return "unavailable"
	case http.StatusBadGateway:
		return CodeStorageError
	}
	return "internal_error"
}

// invalid answers 400 with a French sentence saying what to change.
func invalid(w http.ResponseWriter, message string, detail error) {
	text := message
	if detail != nil {
		text = detail.Error()
	}
	refuse(w, http.StatusBadRequest, Problem{Code: "invalid_request", Message: message}, text)
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
	S3Endpoint  string `json:"s3Endpoint"`
	S3Region    string `json:"s3Region"`
	S3PathStyle *bool  `json:"s3PathStyle"`
	// HostKey (the public key, as ssh-keyscan prints it) or
	// HostKeyFingerprint ("SHA256:…") confirms the SFTP server's host key;
	// without either, the registration answers 409 with the key presented.
	HostKey            string `json:"hostKey"`
	HostKeyFingerprint string `json:"hostKeyFingerprint"`
}

func (s *Service) register(w http.ResponseWriter, r *http.Request) {
	var reg registration
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&reg); err != nil {
		invalid(w, "demande illisible : un objet JSON avec url et, selon le stockage, credentials, s3Endpoint, s3Region, hostKeyFingerprint… (voir /openapi.json).", fmt.Errorf("invalid registration: %v", err))
		return
	}
	interval := s.cfg.DefaultInterval
	if reg.Interval != "" {
		d, ok := parseInterval(w, reg.Interval)
		if !ok {
			return
		}
		interval = d
	}
	if reg.Livrable != nil {
		if err := reg.Livrable.Validate(); err != nil {
			invalid(w, "attributs du livrable invalides : "+err.Error(), fmt.Errorf("livrable: %v", err))
			return
		}
	}
	if reg.Catalog != nil {
		if s.cfg.Catalog == "" {
			invalid(w, "ce service n'a pas de catalogue (--catalog) : donnez les attributs dans livrable.", errors.New("catalog: this service has no catalog configured (--catalog)"))
			return
		}
		c, err := catalog.Load(r.Context(), s.cfg.Catalog, nil)
		if err != nil {
			fail(w, http.StatusBadGateway, "catalog: %v", err)
			return
		}
		attrs, err := c.Attributes(reg.Catalog.Projet, reg.Catalog.Livrable)
		if err != nil {
			invalid(w, "livrable absent du catalogue : "+err.Error(), fmt.Errorf("catalog: %v", err))
			return
		}
		reg.Livrable = livrable.Merge(attrs, reg.Livrable)
	}
	u, err := storage.ParseLocation(reg.URL)
	if err != nil || reg.URL == "" || !strings.Contains(reg.URL, "://") {
		invalid(w, "url : l'adresse d'un stockage (https://, s3://, sftp://, ftp://) est requise.", errors.New("url: a storage URL (https://, s3://, sftp://, ftp://) is required"))
		return
	}
	settings := Settings{S3Endpoint: reg.S3Endpoint, S3Region: reg.S3Region, S3PathStyle: reg.S3PathStyle}
	if !s.settle(w, u.Scheme, &settings, &reg.HostKey, &reg.HostKeyFingerprint) {
		return
	}
	if !reg.Credentials.empty() && s.sealer == nil {
		invalid(w, "ce service ne peut pas garder d'identifiants : il n'a pas de clé de chiffrement (--secret-key-file ou "+SecretKeyEnv+").", fmt.Errorf("credentials: %w", ErrNoSecretKey))
		return
	}
	rec := Record{URL: reg.URL, Name: reg.Name, Credentials: reg.Credentials, Settings: settings, Livrable: reg.Livrable, Interval: interval, Created: time.Now().UTC()}
	if _, err := s.checkStorage(r.Context(), rec); err != nil {
		refuse(w, http.StatusBadRequest, s.explain(err, rec), scrubber(rec)(err.Error()))
		return
	}
	if rec.Name == "" && rec.Livrable != nil {
		rec.Name = rec.Livrable.Nom
	}
	if rec.Name == "" {
		rec.Name = strings.TrimPrefix(shown(u.Scheme+"://"+u.Host+u.Path), u.Scheme+"://")
	}
	if !s.unique(w, rec) {
		return
	}
	if !s.probe(r.Context(), w, rec) {
		return
	}
	s.recordsMu.Lock()
	defer s.recordsMu.Unlock()
	if !s.unique(w, rec) {
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

// parseInterval reads a rescan interval, answering 400 when it is not one.
func parseInterval(w http.ResponseWriter, given string) (time.Duration, bool) {
	d, err := time.ParseDuration(given)
	if err != nil || d < time.Minute {
		invalid(w, fmt.Sprintf("intervalle %q : une durée d'au moins 1m, comme 24h ou 30m.", given), fmt.Errorf("interval %q: a duration of at least 1m, such as 24h", given))
		return 0, false
	}
	return d, true
}

// settle checks settings for a storage of scheme and normalises them: the
// S3 endpoint, and the host key given (key or fingerprint) as its
// fingerprint. It answers 400 and returns false when they do not fit.
func (s *Service) settle(w http.ResponseWriter, scheme string, st *Settings, hostKey, fingerprint *string) bool {
	if scheme != "s3" && (st.S3Endpoint != "" || st.S3Region != "" || st.S3PathStyle != nil) {
		invalid(w, "s3Endpoint, s3Region et s3PathStyle ne valent que pour un stockage s3://.", nil)
		return false
	}
	if scheme != "sftp" && (*hostKey != "" || *fingerprint != "") {
		invalid(w, "hostKey et hostKeyFingerprint ne valent que pour un stockage sftp://.", nil)
		return false
	}
	if st.S3Endpoint != "" {
		e, err := url.Parse(st.S3Endpoint)
		if err != nil || (e.Scheme != "https" && e.Scheme != "http") || e.Host == "" || e.User != nil || e.RawQuery != "" || e.Fragment != "" {
			invalid(w, fmt.Sprintf("s3Endpoint %q : donnez l'adresse du point d'accès S3, https://hôte[:port], sans identifiant ni paramètre (les clés vont dans credentials).", storage.Redact(st.S3Endpoint)), nil)
			return false
		}
		st.S3Endpoint = strings.TrimRight(e.Scheme+"://"+e.Host+e.Path, "/")
	}
	var fromKey string
	if *hostKey != "" {
		fp, _, err := sftp.HostKeyFingerprint(*hostKey)
		if err != nil {
			refuse(w, http.StatusBadRequest, s.explain(err, Record{}), err.Error())
			return false
		}
		fromKey = fp
	}
	if *fingerprint != "" {
		fp, _, err := sftp.HostKeyFingerprint(*fingerprint)
		if err != nil {
			refuse(w, http.StatusBadRequest, s.explain(err, Record{}), err.Error())
			return false
		}
		if fromKey != "" && fp != fromKey {
			invalid(w, fmt.Sprintf("hostKey (empreinte %s) et hostKeyFingerprint (%s) ne désignent pas la même clé : n'en donnez qu'une.", fromKey, fp), nil)
			return false
		}
		fromKey = fp
	}
	if fromKey != "" {
		st.HostKeyFingerprint = fromKey
	}
	return true
}

// probe checks that rec's storage answers by connecting and listing its
// root once; when it does not, it answers with the problem (409 for a
// host key to confirm, else 422) and returns false.
func (s *Service) probe(ctx context.Context, w http.ResponseWriter, rec Record) bool {
	u, err := storage.ParseLocation(rec.URL)
	if err != nil {
		invalid(w, "url illisible.", err)
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := s.openComposed(ctx, rec, u.Scheme)
	if err == nil {
		_, err = st.List(ctx, "")
		st.Close()
	}
	if err == nil {
		return true
	}
	p := s.explain(err, rec)
	status := http.StatusUnprocessableEntity
	if p.Code == CodeHostKeyUnconfirmed {
		status = http.StatusConflict
	}
	refuse(w, status, p, "cannot reach the storage: "+scrubber(rec)(err.Error()))
	return false
}

// unique answers 409 with the existing storage's id, and returns false,
// when another storage than rec is registered at rec's location.
func (s *Service) unique(w http.ResponseWriter, rec Record) bool {
	records, err := s.list()
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return false
	}
	want := s.locationKey(rec)
	for _, other := range records {
		if other.ID != rec.ID && s.locationKey(other) == want {
			writeJSON(w, http.StatusConflict, apiError{ID: other.ID, Error: "this location is already registered",
				Problem: Problem{Code: CodeDuplicate, Message: fmt.Sprintf("cet emplacement est déjà enregistré, sous l'identifiant %s : changez ses réglages ou ses identifiants par PATCH /storages/%s plutôt que de l'enregistrer une seconde fois.", other.ID, other.ID)}})
			return false
		}
	}
	return true
}

// defaultPorts are the ports a location may leave out.
var defaultPorts = map[string]string{"http": "80", "https": "443", "sftp": "22", "ftp": "21"}

// locationKey is r's location reduced to what names the data, as shown
// (no credentials, query or fragment), normalised: scheme and host in
// lower case, default port and trailing slash left out. An S3 bucket is
// named with its store: the same bucket name on two stores is two
// storages.
func (s *Service) locationKey(r Record) string {
	u, err := url.Parse(shown(r.URL))
	if err != nil || u.Scheme == "" {
		return strings.TrimRight(r.URL, "/")
	}
	scheme := strings.ToLower(u.Scheme)
	p := strings.Trim(path.Clean("/"+u.Path), "/")
	if scheme == "s3" {
		// Bucket names are lower case on every store that resolves them.
		return "s3://" + hostPortKey(s.s3Endpoint(r), "") + "/" + strings.ToLower(u.Host) + "/" + p
	}
	return scheme + "://" + hostPortKey(u.Host, scheme) + "/" + p
}

// hostPortKey is host[:port] (or an endpoint URL) in lower case without its
// default port; "" is AWS's S3.
func hostPortKey(hostport, scheme string) string {
	if strings.Contains(hostport, "://") {
		e, err := url.Parse(hostport)
		if err != nil {
			return strings.ToLower(hostport)
		}
		return strings.ToLower(e.Scheme) + "://" + hostPortKey(e.Host, strings.ToLower(e.Scheme)) + strings.TrimRight(e.Path, "/")
	}
	if hostport == "" {
		return "aws"
	}
	h := &url.URL{Host: hostport}
	host, port := canonicalHost(h.Hostname()), h.Port()
	if port == "" || port == defaultPorts[scheme] {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, port)
}

// canonicalHost is one spelling per host: lower case, without the root's
// trailing dot, an IP literal in its shortest form (an IPv4-mapped IPv6
// address as IPv4).
func canonicalHost(host string) string {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().WithZone("").String()
	}
	return host
}

// setGiven sets *dst to what a PATCH gave, when it gave it.
func setGiven(dst, v *string) {
	if v != nil {
		*dst = *v
	}
}

// patch is a PATCH /storages/{id} body: what is given replaces what the
// storage had, "" clears a text; what is left out stays.
type patch struct {
	URL         *string              `json:"url"` // refused unless unchanged: a location is a storage
	Name        *string              `json:"name"`
	Interval    *string              `json:"interval"`
	Livrable    *livrable.Attributes `json:"livrable"`
	Credentials *struct {
		Password       *string `json:"password"`
		S3AccessKey    *string `json:"s3AccessKey"`
		S3SecretKey    *string `json:"s3SecretKey"`
		SFTPPrivateKey *string `json:"sftpPrivateKey"`
		SFTPPassphrase *string `json:"sftpPassphrase"`
	} `json:"credentials"`
	S3Endpoint         *string `json:"s3Endpoint"`
	S3Region           *string `json:"s3Region"`
	S3PathStyle        *bool   `json:"s3PathStyle"`
	HostKey            *string `json:"hostKey"`
	HostKeyFingerprint *string `json:"hostKeyFingerprint"`
}

// apply changes rec as p says; settings are rec's, checked and
// normalised by the caller.
func (p patch) apply(rec *Record, settings Settings, interval time.Duration) {
	setGiven(&rec.Name, p.Name)
	if p.Interval != nil {
		rec.Interval = interval
		if rec.NextScan.After(time.Now().Add(interval)) {
			rec.NextScan = time.Now().Add(interval)
		}
	}
	if p.Livrable != nil {
		rec.Livrable = p.Livrable
	}
	if c := p.Credentials; c != nil {
		setGiven(&rec.Credentials.Password, c.Password)
		setGiven(&rec.Credentials.S3AccessKey, c.S3AccessKey)
		setGiven(&rec.Credentials.S3SecretKey, c.S3SecretKey)
		setGiven(&rec.Credentials.SFTPPrivateKey, c.SFTPPrivateKey)
		setGiven(&rec.Credentials.SFTPPassphrase, c.SFTPPassphrase)
	}
	rec.Settings = settings
}

// patchStorage changes a storage's credentials and settings, never its
// location, keeping its state and outputs: the next scan reuses what did
// not change. New credentials or settings are checked by connecting
// first, and the storage is queued for a scan with them.
func (s *Service) patchStorage(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.record(w, r)
	if !ok {
		return
	}
	var p patch
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		invalid(w, "demande illisible : un objet JSON avec les seuls champs à changer (credentials, s3Endpoint, s3Region, s3PathStyle, hostKeyFingerprint, name, interval, livrable).", fmt.Errorf("invalid change: %v", err))
		return
	}
	if p.URL != nil && *p.URL != rec.URL {
		refuse(w, http.StatusBadRequest, Problem{Code: "location_immutable", Message: "l'emplacement d'un stockage ne change pas : enregistrez le nouvel emplacement (POST /storages), puis supprimez celui-ci."}, "the location of a storage cannot change")
		return
	}
	var interval time.Duration
	if p.Interval != nil {
		if interval, ok = parseInterval(w, *p.Interval); !ok {
			return
		}
	}
	if p.Livrable != nil {
		if err := p.Livrable.Validate(); err != nil {
			invalid(w, "attributs du livrable invalides : "+err.Error(), fmt.Errorf("livrable: %v", err))
			return
		}
	}
	u, err := storage.ParseLocation(rec.URL)
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	settings := rec.Settings
	setGiven(&settings.S3Endpoint, p.S3Endpoint)
	setGiven(&settings.S3Region, p.S3Region)
	if p.S3PathStyle != nil {
		settings.S3PathStyle = p.S3PathStyle
	}
	var hostKey, fingerprint string
	setGiven(&hostKey, p.HostKey)
	setGiven(&fingerprint, p.HostKeyFingerprint)
	if !s.settle(w, u.Scheme, &settings, &hostKey, &fingerprint) {
		return
	}
	next := *rec
	p.apply(&next, settings, interval)
	if !next.Credentials.empty() && s.sealer == nil {
		invalid(w, "ce service ne peut pas garder d'identifiants : il n'a pas de clé de chiffrement (--secret-key-file ou "+SecretKeyEnv+").", fmt.Errorf("credentials: %w", ErrNoSecretKey))
		return
	}
	reach := next.Credentials != rec.Credentials || !sameSettings(next.Settings, rec.Settings)
	if reach {
		if _, err := s.checkStorage(r.Context(), next); err != nil {
			refuse(w, http.StatusBadRequest, s.explain(err, next), scrubber(next)(err.Error()))
			return
		}
		if !s.unique(w, next) || !s.probe(r.Context(), w, next) {
			return
		}
	}
	if s.locationKey(next) != s.locationKey(*rec) {
		// Another S3 store: a scan of the first one still running would
		// go on publishing its tiles after the change. The next scan
		// clears the state (ownState).
		s.pause(rec.ID)
		defer s.resume(rec.ID)
	}
	s.recordsMu.Lock()
	cur, err := s.get(rec.ID)
	if errors.Is(err, errNotFound) {
		s.recordsMu.Unlock()
		fail(w, http.StatusNotFound, "no storage %q", rec.ID)
		return
	}
	if err == nil && (cur.Credentials != rec.Credentials || !sameSettings(cur.Settings, rec.Settings)) {
		// Another change landed while this one was read and checked: its
		// settings were built on the old record (a host key confirmed
		// meanwhile would be undone, a pairing never checked stored).
		s.recordsMu.Unlock()
		refuse(w, http.StatusConflict, Problem{Code: "changed_meanwhile", Message: "le stockage a été modifié par une autre demande pendant celle-ci : relisez-le, puis renvoyez votre modification."}, "the storage changed during this request")
		return
	}
	if err == nil {
		// Applied again to the record as it is now: a scan may have ended
		// meanwhile, and its outcome stays.
		p.apply(cur, settings, interval)
		if reach && !s.unique(w, *cur) {
			s.recordsMu.Unlock()
			return
		}
		err = s.put(cur)
	}
	s.recordsMu.Unlock()
	if err != nil {
		fail(w, http.StatusInternalServerError, "storing: %v", err)
		return
	}
	s.log.Info("storage changed", "storage", cur.ID, "credentials", next.Credentials != rec.Credentials, "settings", !sameSettings(next.Settings, rec.Settings))
	if reach {
		s.queue(cur.ID)
	}
	writeJSON(w, http.StatusOK, s.view(*cur))
}

func sameSettings(a, b Settings) bool {
	pathStyle := func(p *bool) string {
		if p == nil {
			return "unset"
		}
		return strconv.FormatBool(*p)
	}
	return a.S3Endpoint == b.S3Endpoint && a.S3Region == b.S3Region && a.HostKeyFingerprint == b.HostKeyFingerprint && pathStyle(a.S3PathStyle) == pathStyle(b.S3PathStyle)
}

// view is a storage as the API shows it: never its credentials' values.
type view struct {
	ID       string `json:"id"`
	URL      string `json:"url"`
	Name     string `json:"name"`
	Interval string `json:"interval"`
	Settings
	// Credentials names the credentials the storage has, never their values.
	Credentials []string   `json:"credentialsSet"`
	Status      string     `json:"status"`
	Progress    *liveView  `json:"progress,omitempty"`
	LastSuccess *time.Time `json:"lastSuccessfulScan"`
	LastError   *string    `json:"lastError"`
	LastProblem *Problem   `json:"lastProblem"`
	LastCounts  *Counts    `json:"lastCounts"`
	NextScan    time.Time  `json:"nextScan"`
	// AllowShrink: the next scan may publish a smaller delivery.
	AllowShrink bool `json:"allowShrink,omitempty"`
}

type liveView struct {
	Done  int `json:"done"`
	Total int `json:"total"`
}

func (s *Service) view(r Record) view {
	v := view{ID: r.ID, URL: shown(r.URL), Name: r.Name, Interval: r.Interval.String(), Settings: r.Settings, Credentials: r.Credentials.names(), Status: "idle",
		LastSuccess: r.LastSuccess, LastCounts: r.LastCounts, NextScan: r.NextScan, AllowShrink: r.AllowShrink}
	if r.LastError != "" {
		scrub := scrubber(r)
		e := scrub(r.LastError)
		v.LastError = &e
		if r.LastProblem != nil {
			p := *r.LastProblem
			p.Message = scrub(p.Message)
			v.LastProblem = &p
		}
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

// requestScan queues a scan; with ?allowShrink=true that scan may publish
// fewer than half the readable tiles of the outputs it replaces: the admin
// says the delivery really shrank (without it, such a scan keeps the last
// outputs and fails with scan_shrunk).
func (s *Service) requestScan(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.record(w, r)
	if !ok {
		return
	}
	switch v := r.URL.Query().Get("allowShrink"); v {
	case "", "false":
	case "true":
		cur, err := s.updateRecord(rec.ID, func(c *Record) { c.AllowShrink = true })
		if err != nil {
			fail(w, http.StatusInternalServerError, "%v", err)
			return
		}
		rec = cur
		s.log.Info("the next scan may publish a smaller delivery", "storage", rec.ID)
	default:
		invalid(w, "allowShrink vaut true ou false.", fmt.Errorf("allowShrink=%q", v))
		return
	}
	s.queue(rec.ID)
	writeJSON(w, http.StatusAccepted, s.view(*rec))
}

func (s *Service) deleteStorage(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.record(w, r)
	if !ok {
		return
	}
	// The scan goes first: once it has ended nothing writes the
	// storage's state or outputs, and none starts again.
	s.stop(rec.ID)
	s.recordsMu.Lock()
	err := s.storages.Delete(rec.ID)
	s.recordsMu.Unlock()
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	if err := s.objects(rec.ID).Drop(); err != nil {
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
	limitRanges(r)
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
	switch {
	case strings.HasSuffix(name, ".geojson"):
		return "application/geo+json"
	case strings.HasSuffix(name, ".fgb"):
		// FlatGeobuf has no registered media type.
		return "application/octet-stream"
	}
	return "application/json"
}

func (s *Service) downloadToken(w http.ResponseWriter, r *http.Request) {
	if rec, ok := s.record(w, r); ok {
		expires := time.Now().Add(tokenLifetime)
		writeJSON(w, http.StatusOK, map[string]string{"token": s.signToken(rec.ID, expires), "expires": expires.UTC().Format(time.RFC3339)})
	}
}

// maxRanges bounds the ranges of one request for a file or an output;
// more are ignored (RFC 9110 lets a server send the whole file instead),
// so that a request listing thousands of overlapping ranges turns neither
// into thousands of upstream reads nor a small file into a huge answer.
const maxRanges = 16

// limitRanges drops a Range header asking for more than maxRanges.
func limitRanges(r *http.Request) {
	if countRanges(r.Header.Get("Range")) > maxRanges {
		r.Header.Del("Range")
	}
}

// download streams a file of the storage through the service, with Range
// support, for a valid token.
func (s *Service) download(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.record(w, r)
	if !ok {
		return
	}
	key := r.PathValue("path")
	// An admin's token opens any file of the storage; a share page's
	// link, the one file it was made for.
	token, now := r.URL.Query().Get("token"), time.Now()
	if s.checkToken(rec.ID, token, now) != nil && s.checkFileToken(*rec, key, token, now) != nil {
		refuse(w, http.StatusForbidden, Problem{Code: CodeDownloadTokenInvalid,
			Message: "lien de téléchargement expiré ou invalide : rechargez la page de la livraison pour en obtenir un nouveau."}, errBadToken.Error())
		return
	}
	if _, err := storage.JoinKey("/", key); err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	u, err := s.checkStorage(r.Context(), *rec)
	if errors.Is(err, ErrRefused) {
		refuse(w, http.StatusForbidden, s.explain(err, *rec), err.Error())
		return
	}
	if err != nil {
		fail(w, http.StatusBadGateway, "%v", scrubber(*rec)(err.Error()))
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
		refuse(w, http.StatusBadGateway, s.explain(err, *rec), scrubber(*rec)(err.Error()))
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
	limitRanges(r)
	w.Header().Set("Content-Type", "application/octet-stream") // no sniffing read
	// The name as the report shows it (RFC 2231 when not ASCII): a key
	// that is not UTF-8 would otherwise reach the browser as "r\xe9seau".
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": indexer.DisplayName(path.Base(key))}))
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
