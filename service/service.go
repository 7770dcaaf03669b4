// Package service is `pcrs-indexer serve`: project owners register their
// storages, the service rescans them on a schedule (incrementally, through
// the embedded state), serves the outputs over HTTP and exposes metrics.
package service

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/openpcrs/pcrs-indexer/indexer"
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
	S3Endpoint           string
	// Catalog is the folder or base URL of the PCRS CSV exports, for
	// registrations naming a projet/livrable pair.
	Catalog string
	// Basemap is an optional XYZ tile URL template for the map page; the
	// page works without one.
	Basemap string
	// MaxScans bounds scans running at once; each has Concurrency workers.
	MaxScans    int
	Concurrency int
	// DefaultInterval is the rescan interval of storages registered
	// without one.
	DefaultInterval time.Duration
	// MaxObjects bounds one storage's listing (default 2,000,000).
	MaxObjects int
	Registry   *storage.Registry
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	Logger     *slog.Logger
}

// Credentials are a storage's secrets: stored, never returned, never logged.
type Credentials struct {
	Password    string `json:"password,omitempty"`
	S3AccessKey string `json:"s3AccessKey,omitempty"`
	S3SecretKey string `json:"s3SecretKey,omitempty"`
}

// Counts are a scan's counts, as report.json has them.
type Counts = indexer.Counts

// Record is a registered storage, as stored.
type Record struct {
	ID          string               `json:"id"`
	URL         string               `json:"url"`
	Name        string               `json:"name"`
	Credentials Credentials          `json:"credentials"`
	Livrable    *livrable.Attributes `json:"livrable,omitempty"`
	Interval    time.Duration        `json:"interval"`
	Created     time.Time            `json:"created"`
	NextScan    time.Time            `json:"nextScan"`
	LastSuccess *time.Time           `json:"lastSuccessfulScan"`
	LastError   string               `json:"lastError"`
	LastCounts  *Counts              `json:"lastCounts"`
}

// Service runs scans and answers the API.
type Service struct {
	cfg      Config
	store    *state.Store
	storages *state.Namespace
	metrics  *indexer.Metrics
	tokenKey []byte
	log      *slog.Logger
	sem      chan struct{}
	wake     chan struct{}

	mu       sync.Mutex
	running  map[string]*progress // storage id → live progress
	queued   map[string]bool
	wg       sync.WaitGroup
	stopping bool
}

// New opens the service's data folder.
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
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		reg := prometheus.NewRegistry()
		cfg.Registerer, cfg.Gatherer = reg, reg
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "storages"), 0o700); err != nil {
		return nil, err
	}
	store, err := state.Open(filepath.Join(cfg.DataDir, "pcrs-indexer.db"))
	if err != nil {
		return nil, err
	}
	metrics, err := indexer.NewMetrics(cfg.Registerer)
	if err != nil {
		store.Close()
		return nil, err
	}
	s := &Service{cfg: cfg, store: store, storages: store.Namespace("service:storages"), metrics: metrics, log: cfg.Logger,
		sem: make(chan struct{}, cfg.MaxScans), wake: make(chan struct{}, 1), running: map[string]*progress{}, queued: map[string]bool{}}
	if s.tokenKey, err = s.secret(); err != nil {
		store.Close()
		return nil, err
	}
	return s, nil
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

func (s *Service) get(id string) (*Record, error) {
	var r Record
	ok, err := s.storages.Get(id, &r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotFound
	}
	return &r, nil
}

var errNotFound = errors.New("no such storage")

func (s *Service) list() ([]Record, error) {
	var out []Record
	err := s.storages.Each(func(_ string, decode func(any) error) error {
		var r Record
		if err := decode(&r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// Run schedules scans until ctx ends: storages whose next scan is due, and
// those queued by the API, one scan per storage at a time, at most
// MaxScans at once. The schedule lives in the store, so it survives
// restarts.
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
	s.queued[id] = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Service) startDue(ctx context.Context) {
	records, err := s.list()
	if err != nil {
		s.log.Error("reading storages", "error", err)
		return
	}
	now := time.Now()
	for _, r := range records {
		s.mu.Lock()
		_, busy := s.running[r.ID]
		due := s.queued[r.ID] || !r.NextScan.After(now)
		if busy || !due || s.stopping {
			s.mu.Unlock()
			continue
		}
		select {
		case s.sem <- struct{}{}:
		default:
			s.mu.Unlock()
			return // all scan slots busy: the next tick tries again
		}
		p := &progress{}
		s.running[r.ID] = p
		delete(s.queued, r.ID)
		s.wg.Add(1)
		s.mu.Unlock()
		go func(r Record) {
			defer func() {
				<-s.sem
				s.mu.Lock()
				delete(s.running, r.ID)
				s.mu.Unlock()
				s.wg.Done()
			}()
			s.scan(ctx, r, p)
		}(r)
	}
}

// scan runs one scan of a storage and records its outcome.
func (s *Service) scan(ctx context.Context, r Record, p *progress) {
	log := s.log.With("storage", r.ID, "source", storage.Redact(r.URL))
	err := s.scanOnce(ctx, r, p, log)
	if ctx.Err() != nil {
		return // shutting down: the scan resumes from the state next time
	}
	cur, gerr := s.get(r.ID)
	if gerr != nil {
		return // deleted meanwhile
	}
	cur.NextScan = time.Now().Add(cur.Interval)
	if err != nil {
		cur.LastError = err.Error()
		log.Error("scan failed", "error", err)
	} else {
		now := time.Now().UTC()
		cur.LastSuccess, cur.LastError = &now, ""
	}
	if c := p.counts(); c != nil {
		cur.LastCounts = c
	}
	if err := s.storages.Put(r.ID, cur); err != nil {
		log.Error("recording the scan", "error", err)
	}
}

func (s *Service) scanOnce(ctx context.Context, r Record, p *progress, log *slog.Logger) error {
	u, err := storage.ParseLocation(r.URL)
	if err != nil {
		return err
	}
	if err := s.checkLocation(ctx, u); err != nil {
		return err
	}
	st, err := s.cfg.Registry.Open(ctx, r.URL, s.options(r))
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := indexer.Scan(ctx, indexer.Config{
		Storage: st, Location: r.URL, Backend: u.Scheme, Name: r.Name, Attributes: r.Livrable,
		Concurrency: s.cfg.Concurrency, MaxObjects: s.cfg.MaxObjects, State: s.store.Namespace("objects:" + r.ID),
		Logger: log, Progress: p, Metrics: s.metrics,
	})
	if res != nil {
		p.setCounts(res.Report.Counts)
	}
	if errors.Is(err, indexer.ErrIncomplete) {
		if perr := indexer.PublishFailed(s.outDir(r.ID), &res.Report); perr != nil {
			log.Error("writing the failed report", "error", perr)
		}
		return err
	}
	if err != nil {
		return err
	}
	return indexer.Publish(s.outDir(r.ID), res)
}

func (s *Service) options(r Record) storage.Options {
	return storage.Options{
		Password:    r.Credentials.Password,
		S3Endpoint:  s.cfg.S3Endpoint,
		S3PathStyle: s.cfg.S3Endpoint != "",
		S3AccessKey: r.Credentials.S3AccessKey, S3SecretKey: r.Credentials.S3SecretKey,
		// SFTP host keys are checked against the service user's known_hosts.
	}
}

// progress is a running scan's live counts.
type progress struct {
	mu          sync.Mutex
	total, done int
	final       *Counts
}

func (p *progress) Start(total int) { p.mu.Lock(); p.total = total; p.mu.Unlock() }
func (p *progress) Advance(n int)   { p.mu.Lock(); p.done += n; p.mu.Unlock() }
func (p *progress) Finish()         {}

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
