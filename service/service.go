// Package service is `pcrs-indexer serve`: project owners register their
// storages, the service rescans them on a schedule (incrementally, through
// the embedded state), serves the outputs over HTTP and exposes metrics.
package service

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/internal/netguard"
	"github.com/openpcrs/pcrs-indexer/livrable"
	"github.com/openpcrs/pcrs-indexer/state"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is the service's configuration.
type Config struct {
	DataDir              string
	AdminToken           string // empty: admin calls disabled
	AllowPrivateNetworks bool
	AllowFileStorages    bool
	// S3Endpoint is the endpoint of s3:// storages registered without
	// their own (Settings.S3Endpoint); "": AWS.
	S3Endpoint string
	// Catalog is the folder or base URL of the PCRS CSV exports, for
	// registrations naming a projet/livrable pair.
	Catalog string
	// Basemaps are the map page's background layers (see ParseBasemap and
	// DefaultBasemaps); none: the page draws on a plain background.
	Basemaps []Basemap
	// MaxScans bounds scans running at once; each has Concurrency workers.
	MaxScans    int
	Concurrency int
	// DefaultInterval is the rescan interval of storages registered
	// without one.
	DefaultInterval time.Duration
	// MaxObjects bounds one storage's listing (default 2,000,000).
	MaxObjects int
	// MaxFolders bounds the folders of one storage's listing (default
	// 100,000), so a listing of folders alone cannot hold a slot forever.
	MaxFolders int
	// ScanTimeout bounds one scan, listing included (default 12 h).
	ScanTimeout time.Duration
	// SecretKey (32 bytes, AES-256-GCM) encrypts storages' credentials at
	// rest; without one, registrations with credentials are refused. See
	// LoadSecretKey.
	SecretKey  []byte
	Registry   *storage.Registry
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	Logger     *slog.Logger
}

// Credentials are a storage's secrets: stored encrypted, never returned,
// never logged.
type Credentials struct {
	Password    string `json:"password,omitempty"`
	S3AccessKey string `json:"s3AccessKey,omitempty"`
	S3SecretKey string `json:"s3SecretKey,omitempty"`
	// SFTPPrivateKey is a private key (PEM or OpenSSH format), offered
	// instead of the password; SFTPPassphrase decrypts it.
	SFTPPrivateKey string `json:"sftpPrivateKey,omitempty"`
	SFTPPassphrase string `json:"sftpPassphrase,omitempty"`
}

// Settings are how a storage is reached besides its secrets: shown by the
// API, changed by PATCH without losing the storage's state or outputs.
type Settings struct {
	// S3Endpoint is the storage's S3 store (https://s3.example.fr); "":
	// the service's Config.S3Endpoint, or AWS.
	S3Endpoint string `json:"s3Endpoint,omitempty"`
	// S3Region is the bucket's region; "": us-east-1, which most
	// S3-compatible stores accept.
	S3Region string `json:"s3Region,omitempty"`
	// S3PathStyle puts the bucket in the path rather than the host name;
	// unset: whenever an endpoint is set.
	S3PathStyle *bool `json:"s3PathStyle,omitempty"`
	// HostKeyFingerprint is the SFTP server's host key as the owner
	// confirmed it ("SHA256:…", as ssh-keygen -l prints it); any other key
	// is refused.
	HostKeyFingerprint string `json:"hostKeyFingerprint,omitempty"`
}

// Counts are a scan's counts, as report.json has them.
type Counts = indexer.Counts

// Record is a registered storage, as stored.
type Record struct {
	ID          string      `json:"id"`
	URL         string      `json:"url"`
	Name        string      `json:"name"`
	Credentials Credentials `json:"-"` // stored sealed: see stored
	Settings
	Livrable    *livrable.Attributes `json:"livrable,omitempty"`
	Interval    time.Duration        `json:"interval"`
	Created     time.Time            `json:"created"`
	NextScan    time.Time            `json:"nextScan"`
	LastSuccess *time.Time           `json:"lastSuccessfulScan"`
	LastAttempt *time.Time           `json:"lastScan,omitempty"`
	LastError   string               `json:"lastError"`
	// LastProblem is LastError explained: a stable code and a French
	// sentence saying what the owner must change.
	LastProblem *Problem `json:"lastProblem,omitempty"`
	LastCounts  *Counts  `json:"lastCounts"`
	// ShareNonce is what the storage's share links are signed over (see
	// shareKey); "" when none was given or the last were revoked.
	ShareNonce string `json:"shareNonce,omitempty"`
	// StateOf is the location (locationKey) whose objects the storage's
	// state describes. A scan finding the storage elsewhere (a PATCH of
	// s3Endpoint, the service's --s3-endpoint changed) clears the state
	// first: the same keys on another store are other objects. "" in
	// records older than it: the current location.
	StateOf string `json:"stateOf,omitempty"`
	// AllowShrink lets the next scan publish fewer than half the readable
	// tiles of the outputs it replaces (the delivery really shrank); a
	// published scan resets it.
	AllowShrink bool `json:"allowShrink,omitempty"`
}

// Service runs scans and answers the API.
type Service struct {
	cfg      Config
	store    *state.Store
	storages *state.Namespace
	metrics  *indexer.Metrics
	tokenKey []byte
	sealer   *sealer // nil without a secret key
	guard    *netguard.Guard
	log      *slog.Logger
	sem      chan struct{}
	wake     chan struct{}

	// recordsMu serialises the read-modify-writes of records: the
	// duplicate check with the record it guards, a PATCH, a scan's outcome,
	// a deletion.
	recordsMu sync.Mutex
	mu        sync.Mutex
	running   map[string]*run      // storage id → its running scan
	queued    map[string]time.Time // storage id → when a scan was asked for
	deleted   map[string]bool      // never scanned again, whatever a list says
	paused    map[string]int       // not scanned while a change is made (see pause)
	wg        sync.WaitGroup
	stopping  bool

	merged mergedOutputs

	// hooks let tests see scans start and end exactly, without sampling.
	hooks struct {
		started func(id string, running int)
		ended   func(id string)
	}
}

// StatePath is the service's store in its data folder (for state.Reset).
func StatePath(dataDir string) string { return filepath.Join(dataDir, "pcrs-indexer.db") }

// run is one running scan.
type run struct {
	progress *progress
	cancel   context.CancelFunc
	done     chan struct{} // closed once the scan has ended
}

// New opens the service's data folder. A damaged store gives an error
// wrapping state.ErrDamaged (state.Reset moves it aside); stored
// credentials without Config.SecretKey give ErrNoSecretKey.
func New(cfg Config) (*Service, error) {
	if cfg.MaxScans <= 0 {
		cfg.MaxScans = 2
	}
	if cfg.DefaultInterval <= 0 {
		cfg.DefaultInterval = 24 * time.Hour
	}
	if cfg.MaxObjects <= 0 {
		cfg.MaxObjects = 2_000_000
	}
	if cfg.MaxFolders <= 0 {
		cfg.MaxFolders = 100_000
	}
	if cfg.ScanTimeout <= 0 {
		cfg.ScanTimeout = 12 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		reg := prometheus.NewRegistry()
		cfg.Registerer, cfg.Gatherer = reg, reg
	}
	sl, err := newSealer(cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "storages"), 0o700); err != nil {
		return nil, err
	}
	store, err := state.Open(StatePath(cfg.DataDir))
	if err != nil {
		return nil, err
	}
	metrics, err := indexer.NewMetrics(cfg.Registerer)
	if err != nil {
		store.Close()
		return nil, err
	}
	s := &Service{cfg: cfg, store: store, storages: store.Namespace("service:storages"), metrics: metrics, log: cfg.Logger, sealer: sl, guard: newGuard(cfg),
		sem: make(chan struct{}, cfg.MaxScans), wake: make(chan struct{}, 1),
		running: map[string]*run{}, queued: map[string]time.Time{}, deleted: map[string]bool{}, paused: map[string]int{}}
	if err := s.load(); err != nil {
		store.Close()
		return nil, err
	}
	return s, nil
}

// load readies the store's contents: the token key, credentials sealed,
// the merged outputs built.
func (s *Service) load() error {
	var err error
	if s.tokenKey, err = s.secret(); err != nil {
		return err
	}
	if err := s.migrateCredentials(); err != nil {
		return err
	}
	if err := s.restoreMetrics(); err != nil {
		return err
	}
	return s.rebuildMerged()
}

// restoreMetrics gives every storage its last success and attempt back
// after a restart: an alert on staleness must not fire, or go quiet,
// because the service restarted.
func (s *Service) restoreMetrics() error {
	return s.storages.Each(func(id string, decode func(any) error) error {
		var st stored
		if err := decode(&st); err != nil {
			return err
		}
		var success, attempt time.Time
		if st.LastSuccess != nil {
			success = *st.LastSuccess
		}
		if st.LastAttempt != nil {
			attempt = *st.LastAttempt
		}
		s.metrics.Restore(id, success, attempt)
		return nil
	})
}

// secret is the download tokens' key, made once and kept in the data
// folder so that tokens survive restarts.
func (s *Service) secret() ([]byte, error) {
	keys := s.store.Namespace("service:keys")
	var key []byte
	if ok, err := keys.Get("token", &key); err != nil || ok {
		return key, err
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return key, keys.Put("token", key)
}

// Close waits for running scans (cancelled by Run's context) and closes
// the store.
func (s *Service) Close() error {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.wg.Wait()
	return s.store.Close()
}

func (s *Service) outDir(id string) string { return filepath.Join(s.cfg.DataDir, "storages", id) }

var errNotFound = errors.New("no such storage")

// Run schedules scans until ctx ends: storages whose next scan is due, and
// those queued by the API, one scan per storage at a time, at most
// MaxScans at once, the longest overdue first. The schedule lives in the
// store, so it survives restarts.
func (s *Service) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		s.startDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.wake:
		}
	}
}

func (s *Service) queue(id string) {
	s.mu.Lock()
	if _, ok := s.queued[id]; !ok {
		s.queued[id] = time.Now()
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// startDue starts due scans, oldest due first, until the slots are full:
// a storage waits at most for the ones due before it, whatever its id.
func (s *Service) startDue(ctx context.Context) {
	records, err := s.list()
	if err != nil {
		s.log.Error("reading storages", "error", err)
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	type candidate struct {
		rec Record
		due time.Time
	}
	var due []candidate
	for _, r := range records {
		_, busy := s.running[r.ID]
		if busy || s.deleted[r.ID] || s.paused[r.ID] > 0 || s.stopping {
			continue
		}
		at := r.NextScan
		if asked, ok := s.queued[r.ID]; ok && asked.Before(at) {
			at = asked
		}
		if !at.After(now) {
			due = append(due, candidate{r, at})
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if !due[i].due.Equal(due[j].due) {
			return due[i].due.Before(due[j].due)
		}
		return due[i].rec.ID < due[j].rec.ID
	})
	for _, c := range due {
		select {
		case s.sem <- struct{}{}:
		default:
			return // all scan slots busy: the next tick or end tries again
		}
		s.start(ctx, c.rec)
	}
}

// start launches r's scan; s.mu is held and a slot taken.
func (s *Service) start(ctx context.Context, r Record) {
	sctx, cancel := context.WithCancel(ctx)
	ru := &run{progress: &progress{}, cancel: cancel, done: make(chan struct{})}
	s.running[r.ID] = ru
	delete(s.queued, r.ID)
	s.wg.Add(1)
	if s.hooks.started != nil {
		s.hooks.started(r.ID, len(s.running))
	}
	go func() {
		defer func() {
			cancel()
			<-s.sem
			s.mu.Lock()
			delete(s.running, r.ID)
			s.mu.Unlock()
			if s.hooks.ended != nil {
				s.hooks.ended(r.ID)
			}
			close(ru.done)
			s.wg.Done()
			select { // a slot is free: let waiting storages start now
			case s.wake <- struct{}{}:
			default:
			}
		}()
		s.scan(sctx, r, ru.progress)
	}()
}

// stop cancels id's scan, if one runs, and waits until it has ended; no
// scan of id starts afterwards.
func (s *Service) stop(id string) {
	s.halt(id, func() { s.deleted[id] = true; delete(s.queued, id) })
}

// pause cancels id's scan, if one runs, and waits until it has ended; no
// scan of id starts until resume.
func (s *Service) pause(id string) {
	s.halt(id, func() { s.paused[id]++ })
}

// halt runs mark under s.mu, so that no scan of id starts after it, then
// cancels id's running scan and waits until it has ended.
func (s *Service) halt(id string, mark func()) {
	s.mu.Lock()
	mark()
	ru := s.running[id]
	s.mu.Unlock()
	if ru != nil {
		ru.cancel()
		<-ru.done
	}
}

// objects is storage id's state: what its scans know of each object.
func (s *Service) objects(id string) *state.Namespace {
	return s.store.Namespace("objects:" + id)
}

func (s *Service) resume(id string) {
	s.mu.Lock()
	if s.paused[id]--; s.paused[id] <= 0 {
		delete(s.paused, id)
	}
	s.mu.Unlock()
}

// scan runs one scan of a storage and records its outcome.
func (s *Service) scan(ctx context.Context, r Record, p *progress) {
	scrub := scrubber(r)
	log := slog.New(scrubHandler{s.log.Handler(), scrub}).With("storage", r.ID, "source", shown(r.URL))
	started := time.Now()
	report, err := s.scanOnce(ctx, r, p, log)
	if ctx.Err() != nil {
		return // shutting down or deleted: the scan resumes from the state next time
	}
	if errors.Is(err, errMoved) {
		s.queue(r.ID) // the record as it is now gets the scan asked for
		return
	}
	finished := time.Now()
	s.metrics.ScanFinished(r.ID, indexer.Outcome(err), started, finished, report)
	if err != nil {
		log.Error("scan failed", "error", err)
	}
	// The record as it is now: a PATCH may have changed it meanwhile.
	s.recordsMu.Lock()
	defer s.recordsMu.Unlock()
	cur, gerr := s.get(r.ID)
	if gerr != nil {
		return // deleted meanwhile
	}
	cur.NextScan = finished.Add(cur.Interval)
	attempt := finished.UTC()
	cur.LastAttempt = &attempt
	if err != nil {
		p := s.explain(err, r)
		cur.LastError, cur.LastProblem = scrub(err.Error()), &p
	} else {
		now := time.Now().UTC()
		cur.LastSuccess, cur.LastError, cur.LastProblem = &now, "", nil
		cur.AllowShrink = cur.AllowShrink && !r.AllowShrink // used; one asked meanwhile stays
	}
	if c := p.counts(); c != nil {
		cur.LastCounts = c
	}
	if err := s.put(cur); err != nil {
		log.Error("recording the scan", "error", err)
	}
}

// scanOnce scans r and publishes its outputs; the report is nil when the
// scan produced none.
func (s *Service) scanOnce(ctx context.Context, r Record, p *progress, log *slog.Logger) (*indexer.Report, error) {
	if err := s.ownState(r, log); err != nil {
		return nil, err
	}
	u, err := s.checkStorage(ctx, r)
	if err != nil {
		return nil, err
	}
	st, err := s.open(ctx, r)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	res, err := indexer.Scan(ctx, indexer.Config{
		Storage: st, Location: shown(r.URL), Backend: u.Scheme, Name: r.Name, Attributes: r.Livrable,
		Concurrency: s.cfg.Concurrency, MaxObjects: s.cfg.MaxObjects, MaxFolders: s.cfg.MaxFolders, Timeout: s.cfg.ScanTimeout, State: s.objects(r.ID),
		Logger: log, Progress: p, Metrics: s.metrics, AllowShrink: r.AllowShrink,
		Formats: scanFormats, // dalles.fgb: the map fetches its view by HTTP ranges
	})
	if res != nil {
		defer res.Close()
		p.setCounts(res.Report.Counts)
	}
	if res != nil {
		// Before anything is written: no report on disk (published,
		// failed or refused as shrunk) ever holds a storage's secret.
		res.Scrub(scrubber(r))
	}
	if errors.Is(err, indexer.ErrIncomplete) {
		if perr := indexer.PublishFailed(s.outDir(r.ID), res); perr != nil {
			log.Error("writing the failed report", "error", perr)
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if err := indexer.Publish(s.outDir(r.ID), res); err != nil {
		return nil, err
	}
	return &res.Report, s.rebuildMerged()
}

// errMoved: the record a scan was started from no longer gives the
// storage's location (the scheduler read it just before a PATCH moved the
// storage to another store).
var errMoved = errors.New("the storage moved since its scan was scheduled")

// ownState makes the storage's state describe r's location before a scan
// reads it: found describing another (StateOf), it is cleared, and the
// scan reads every tile again. Cleared before StateOf is stored: a crash
// between the two clears it again next time, never reuses it.
func (s *Service) ownState(r Record, log *slog.Logger) error {
	want := s.locationKey(r)
	s.recordsMu.Lock()
	defer s.recordsMu.Unlock()
	cur, err := s.get(r.ID)
	if err != nil {
		return err
	}
	if s.locationKey(*cur) != want {
		return errMoved
	}
	if cur.StateOf == want {
		return nil
	}
	if cur.StateOf != "" {
		if err := s.objects(r.ID).Clear(); err != nil {
			return fmt.Errorf("clearing the state of storage %s: %w", r.ID, err)
		}
		log.Info("the storage is on another store: its state is cleared, every tile is read again", "before", cur.StateOf, "now", want)
	}
	cur.StateOf = want
	return s.put(cur)
}

// options are what a backend needs for r: the dial-time guard, and
// settings from the record and the service's configuration only, never
// from the process environment or the service user's files.
func (s *Service) options(r Record) storage.Options {
	endpoint := s.s3Endpoint(r)
	pathStyle := endpoint != ""
	if r.S3PathStyle != nil {
		pathStyle = *r.S3PathStyle
	}
	return storage.Options{
		Guard: s.guard, Isolated: true,
		Password:    r.Credentials.Password,
		S3Endpoint:  endpoint,
		S3Region:    r.S3Region,
		S3PathStyle: pathStyle,
		S3AccessKey: r.Credentials.S3AccessKey, S3SecretKey: r.Credentials.S3SecretKey,
		SFTPPrivateKey: r.Credentials.SFTPPrivateKey, SFTPKeyPassphrase: r.Credentials.SFTPPassphrase,
		// Isolated and without a confirmed key, the SFTP backend refuses
		// the server's key, naming it for the owner to confirm: the service
		// never reads its user's known_hosts.
		SFTPHostKey: r.HostKeyFingerprint,
	}
}

// s3Endpoint is r's S3 endpoint: its own, else the service's.
func (s *Service) s3Endpoint(r Record) string {
	if r.S3Endpoint != "" {
		return r.S3Endpoint
	}
	return s.cfg.S3Endpoint
}

// checkStorage parses r's location and refuses it early, like
// checkLocation, the S3 endpoint being r's own when it has one.
func (s *Service) checkStorage(ctx context.Context, r Record) (*url.URL, error) {
	u, err := storage.ParseLocation(r.URL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "s3" || r.S3Endpoint == "" {
		return u, s.checkLocation(ctx, u)
	}
	eu, err := url.Parse(r.S3Endpoint)
	if err != nil {
		return nil, fmt.Errorf("%w: S3 endpoint: %v", ErrRefused, err)
	}
	if err := s.guard.CheckHost(ctx, eu.Hostname()); err != nil {
		if errors.Is(err, netguard.ErrRefused) {
			return nil, fmt.Errorf("%w: %v (--allow-private-networks)", ErrRefused, err)
		}
		return nil, err
	}
	return u, nil
}

// openComposed opens r's storage for the registration probe and
// downloads, composed with retries and request counting like a scan's
// (Close reaches the backend through the decorators). A scan gets the bare
// backend: indexer.Scan composes it itself.
func (s *Service) openComposed(ctx context.Context, r Record, backend string) (storage.Storage, error) {
	st, err := s.open(ctx, r)
	if err != nil {
		return nil, err
	}
	return storage.Compose(st, storage.ComposeConfig{Observers: []storage.Observer{s.metrics.Observer(backend)}}), nil
}

func (s *Service) open(ctx context.Context, r Record) (storage.Storage, error) {
	return s.cfg.Registry.Open(ctx, r.URL, s.options(r))
}

// progress is a running scan's live counts.
type progress struct {
	mu          sync.Mutex
	total, done int
	final       *Counts
}

func (p *progress) Found(n int)   { p.mu.Lock(); p.total += n; p.mu.Unlock() }
func (p *progress) Advance(n int) { p.mu.Lock(); p.done += n; p.mu.Unlock() }
func (p *progress) Finish()       {}

func (p *progress) snapshot() (int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done, p.total
}

func (p *progress) setCounts(c Counts) { p.mu.Lock(); p.final = &c; p.mu.Unlock() }

func (p *progress) counts() *Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.final
}
