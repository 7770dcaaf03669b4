// Package indexer is the scan pipeline: list a storage, select the tiles,
// read their headers with a bounded pool of workers, set bad tiles aside
// with a reason, union the footprint and publish dalles.geojson,
// livrables.geojson and report.json.
package indexer

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path"
	"runtime/debug"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/openpcrs/pcrs-indexer/footprint"
	"github.com/openpcrs/pcrs-indexer/livrable"
	"github.com/openpcrs/pcrs-indexer/raster"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/vector"
	"github.com/paulmach/orb"
	"golang.org/x/sync/errgroup"
)

// DefaultConcurrency is the default number of tiles read at once. Header
// reads are latency-bound (one small ranged request each), so many more
// workers than cores pay off on remote storages.
const DefaultConcurrency = 64

// Problem reasons, as report.json spells them.
const (
	ReasonEmpty            = "empty"
	ReasonCorrupt          = "corrupt"
	ReasonNotGeoreferenced = "not_georeferenced"
	ReasonNoCRS            = "no_crs"
	ReasonUnreachable      = "unreachable"
	ReasonMisplaced        = "misplaced"
)

// ErrIncomplete means the scan could not read every tile: the storage kept
// failing. The result is still returned, for the report.
var ErrIncomplete = errors.New("scan incomplete: the storage kept failing")

// ErrTooLarge is a storage over the walk's bounds (storage.Walker).
var ErrTooLarge = storage.ErrTooLarge

// ErrNoTiles means the storage listed no tile at all: an unmounted disk or
// an emptied bucket looks like this, and publishing it would replace a
// delivery's outputs by nothing.
var ErrNoTiles = errors.New("the storage lists no tile")

// ErrShrunk means a scan found fewer than half the readable tiles of the
// outputs it would replace; Publish keeps them unless told the delivery
// really shrank (Config.AllowShrink).
var ErrShrunk = errors.New("readable tiles fell below half of the published outputs")

// Progress hears about the scan's advance (a terminal bar, the service's
// live counts). Advance is called from many workers at once.
type Progress interface {
	// Found adds n tiles to read: the total grows while listing goes on.
	Found(n int)
	Advance(n int)
	Finish()
}

// Config is one scan.
type Config struct {
	Storage storage.Storage
	// Location is the SOURCE as given; it is redacted before use.
	Location string
	// Backend names the storage kind for metrics ("file", "s3"…).
	Backend    string
	Name       string
	Attributes *livrable.Attributes

	Concurrency int
	Retry       storage.RetryPolicy
	// MaxUnreachable is how many unreachable tiles a scan tolerates before
	// it counts as failed.
	MaxUnreachable int
	// MaxObjects bounds the objects listed (0: storage.DefaultMaxObjects).
	MaxObjects int
	// MaxFolders bounds the folders listed (0: storage.DefaultMaxFolders).
	MaxFolders int
	Footprint  footprint.Options
	// Timeout bounds the whole scan, listing included (0: none).
	Timeout time.Duration
	// AllowShrink lets Publish replace outputs holding more than twice the
	// readable tiles this scan found (the delivery really shrank).
	AllowShrink bool
	// Formats are the encodings Publish writes besides GeoJSON.
	Formats []vector.Format

	// State, when set, remembers tiles between scans: unchanged ones are
	// not read again, and a stopped scan resumes where it was.
	State State

	Logger   *slog.Logger
	Progress Progress
	Metrics  *Metrics
	Now      func() time.Time
}

// State is where a scan keeps its tile records (state.Namespace).
type State interface {
	Get(key string, v any) (bool, error)
	Put(key string, v any) error
	Prune(keep func(key string) bool) (int, error)
}

// record is what a scan keeps of a tile: its fingerprint and verdict.
type record struct {
	Size    int64          `json:"size"`
	ETag    string         `json:"etag,omitempty"`
	ModTime time.Time      `json:"mtime"`
	Header  *raster.Header `json:"header,omitempty"`
	Problem *ProblemEntry  `json:"problem,omitempty"`
	// Placed is where a problem tile stands: from its header when this
	// read told, else from the last header ever read of it, so a tile
	// that turns corrupt stays on the owner's map where it was.
	Placed *footprint.Tile `json:"placed,omitempty"`
}

// unchanged says whether o is the object r was made from: same size, and
// same ETag, or same modification time where the storage has no ETag.
//
// A tile listed without its size (Apache, lighttpd) is compared by its
// ETag or modification time alone, against the size its read told.
func (r record) unchanged(o storage.Object) bool {
	switch {
	case o.Size == storage.SizeUnknown && r.Size <= 0:
		return false
	case o.Size != storage.SizeUnknown && r.Size != o.Size:
		return false
	case r.ETag != "" && o.ETag != "":
		return r.ETag == o.ETag
	case !r.ModTime.IsZero() && !o.ModTime.IsZero():
		return r.ModTime.Equal(o.ModTime)
	}
	return false
}

// Tile is one inspected tile: a header or a problem.
type Tile struct {
	Object   storage.Object
	Header   *raster.Header
	Problem  *ProblemEntry
	Polygon  footprint.Tile
	Siblings []storage.Object
	// Reused is true when the verdict comes from the previous scan.
	Reused bool
	// placed is where a problem tile stands, when its header said (a
	// transfer cut short): report.json draws it.
	placed *footprint.Tile
	// permanent marks an unreachable tile the storage will never address:
	// it does not make the scan incomplete.
	permanent bool
}

// Result is a finished scan, ready to publish.
type Result struct {
	Report   Report
	Outline  *Outline
	Livrable LivrableInfo

	// spool holds the tiles' verdicts on disk, sorted by path.
	spool   *spool
	listing listing
	summary tileSummary
	// warnings wait in the result until the report is built.
	warnings       []WarningEntry
	warningsByKind map[string]int
	footprint      footprint.Options // so tile boxes are drawn like the outline
	source         string            // Config.Location as given: where GDAL finds the tiles
	allowShrink    bool
	formats        []vector.Format
	// scrub takes secrets out of problems' details as they are read back.
	scrub func(string) string
	log   *slog.Logger
	// placingLogged: a problem tile that cannot be drawn is logged by the
	// first reading of the problems only.
	placingLogged bool
}

// EachProblem calls fn on every problem tile, sorted by path, read back
// from disk: drawn in WGS84 where its header placed it, its detail
// scrubbed (Scrub). A Result built by hand gives its Report's problems.
func (r *Result) EachProblem(fn func(p *ProblemEntry) error) error {
	if r.spool == nil {
		for i := range r.Report.Problems {
			if err := fn(&r.Report.Problems[i]); err != nil {
				return err
			}
		}
		return nil
	}
	var ps footprint.Projectors
	defer ps.Close()
	logPlacing := !r.placingLogged
	r.placingLogged = true
	return r.spool.eachProblem(func(t *Tile) error {
		if t.Problem == nil {
			return nil
		}
		p := *t.Problem
		p.Path = DisplayName(t.Object.Key)
		p.RawPath = escapedKey(t.Object.Key)
		p.Detail = DisplayName(p.Detail) // errors quote the key
		if r.scrub != nil {
			p.Detail = r.scrub(p.Detail)
		}
		if t.placed != nil && p.Geometry == nil {
			poly, err := ps.TilePolygon(*t.placed, r.footprint)
			switch {
			case err == nil:
				p.Geometry = polygonGeometry(poly)
			case logPlacing && r.log != nil:
				r.log.Warn("placing a problem tile", "path", p.Path, "error", err)
			}
		}
		return fn(&p)
	})
}

// Scrub takes secrets out of the report's free text, now and as problems
// are read back: a detail may quote the URL as a library saw it.
func (r *Result) Scrub(scrub func(string) string) {
	r.scrub = scrub
	r.Report.Source = scrub(r.Report.Source)
	for i := range r.Report.Problems {
		r.Report.Problems[i].Detail = scrub(r.Report.Problems[i].Detail)
	}
	for i := range r.Report.Skipped {
		r.Report.Skipped[i].Detail = scrub(r.Report.Skipped[i].Detail)
	}
}

// EachTile calls fn on every tile, sorted by path, read back from disk.
func (r *Result) EachTile(fn func(t *Tile) error) error {
	if r.spool == nil {
		return nil
	}
	return r.spool.each(0, fn)
}

// Close frees the disk space the result's tiles take. The outputs must be
// published before.
func (r *Result) Close() error { return r.spool.close() }

// LivrableInfo is what the livrable's feature is built from.
type LivrableInfo struct {
	Name       string
	Storage    string
	Attributes livrable.Attributes
}

var tileExtensions = map[string]bool{".jp2": true, ".tif": true, ".tiff": true}

// IsTile says whether key names a tile, whatever the case of its extension.
func IsTile(key string) bool { return tileExtensions[strings.ToLower(path.Ext(key))] }

// Scan runs one scan. It returns ErrIncomplete with a result when tiles were
// unreachable, and another error without one when the storage could not be
// listed. A result keeps its tiles in a temporary file: Close it once its
// outputs are published.
func Scan(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Retry.Attempts == 0 {
		cfg.Retry = storage.DefaultRetry
	}
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, cfg.Timeout, fmt.Errorf("%w: the scan took longer than %s", context.DeadlineExceeded, cfg.Timeout))
		defer cancel()
	}
	started := cfg.Now()
	location := storage.Redact(cfg.Location)
	log := cfg.Logger.With("source", location)
	if cfg.Metrics != nil {
		cfg.Metrics.inProgress.Inc()
		defer cfg.Metrics.inProgress.Dec()
	}

	counter := &storage.Counter{}
	observers := []storage.Observer{counter}
	if cfg.Metrics != nil {
		observers = append(observers, cfg.Metrics.Observer(cfg.Backend))
	}
	st := storage.Compose(cfg.Storage, storage.ComposeConfig{
		Observers: observers, Retry: cfg.Retry, Concurrency: cfg.Concurrency,
		OnRetry: func(op storage.Op, err error) {
			counter.ObserveRetry(op, err)
			if cfg.Metrics != nil {
				cfg.Metrics.RetryObserved(cfg.Backend, retryReason(err))
			}
		},
	})

	sp, err := newSpool()
	if err != nil {
		return nil, err
	}
	res, err := scanInto(ctx, st, cfg, sp, log)
	if res == nil {
		sp.close()
		return nil, err
	}
	if res.Report, res.summary, err = buildReport(DisplayName(location), started, cfg.Now(), res.listing, sp, counter, res.Outline); err != nil {
		sp.close()
		return nil, err
	}
	if n := res.summary.notUTF8; n > 0 {
		log.Warn("names not in UTF-8 are written as Windows-1252 in the outputs (a local one then has no location)", "names", n)
	}
	res.Report.Warnings, res.Report.WarningsByKind = res.warnings, res.warningsByKind
	if res.Report.Warnings == nil {
		res.Report.Warnings, res.Report.WarningsByKind = []WarningEntry{}, noWarnings()
	}
	if res.Report.Counts.Tiles == 0 {
		return res, fmt.Errorf("%w: %s lists %d objects, none with a tile extension (.jp2, .tif, .tiff)", ErrNoTiles, location, res.listing.listed)
	}
	// A local folder named in Windows-1252 names the storage, and by
	// default the livrable: readable too.
	res.Livrable = LivrableInfo{Name: DisplayName(cfg.Name), Storage: DisplayName(location)}
	if cfg.Attributes != nil {
		res.Livrable.Attributes = *cfg.Attributes
	}
	if cfg.Metrics != nil {
		// Counted from the final verdicts: the union may still set a
		// readable tile aside as misplaced.
		cfg.Metrics.countTiles(res.Report)
	}
	forget(cfg.State, sp, log)
	// A name the storage cannot address stays so on every scan: the tile's
	// problem, not a storage failing.
	unreachable, err := sp.count(flagTransient)
	if err != nil {
		sp.close()
		return nil, err
	}
	if unreachable > cfg.MaxUnreachable {
		return res, fmt.Errorf("%w: %d of %d tiles unreachable", ErrIncomplete, unreachable, sp.len())
	}
	return res, nil
}

// scanInto lists the storage and reads its tiles at once, each verdict
// spooled, then draws the footprint. It returns no result when the
// storage could not be listed or the scan was stopped.
func scanInto(ctx context.Context, st storage.Storage, cfg Config, sp *spool, log *slog.Logger) (*Result, error) {
	lst, err := listAndJudge(ctx, st, cfg, sp, log)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		return nil, err
	}
	for _, sk := range lst.skipped.kept {
		log.Warn("object skipped", "path", sk.Path, "detail", sk.Detail)
	}
	if n := lst.skipped.total - len(lst.skipped.kept); n > 0 {
		log.Warn("more objects skipped than the report lists", "listed", len(lst.skipped.kept), "skipped", lst.skipped.total)
	}
	if err := sp.finish(); err != nil {
		return nil, err
	}
	log.Info("listed and read the storage", "objects", lst.listed, "tiles", sp.len())
	res := &Result{spool: sp, listing: lst, footprint: cfg.Footprint, allowShrink: cfg.AllowShrink, source: cfg.Location, Outline: &Outline{}, log: log}
	for _, f := range cfg.Formats {
		if f != vector.GeoJSON {
			res.formats = append(res.formats, f)
		}
	}
	if sp.len() == 0 {
		return res, nil
	}
	if res.Outline, err = buildOutline(sp, cfg.Footprint, log); err != nil {
		return nil, err
	}
	if res.warnings, res.warningsByKind, err = checkQuality(sp, cfg.Attributes, cfg.Footprint, log); err != nil {
		return nil, err
	}
	return res, nil
}

// listAndJudge walks the storage and hands each tile to the readers as
// soon as its sidecars are known: reading overlaps listing, and only the
// folders still being listed are held in memory.
func listAndJudge(ctx context.Context, st storage.Storage, cfg Config, sp *spool, log *slog.Logger) (listing, error) {
	g, gctx := errgroup.WithContext(ctx)
	tiles := make(chan Tile, cfg.Concurrency)
	for range cfg.Concurrency {
		g.Go(func() error {
			for t := range tiles {
				if err := judgeAndSpool(gctx, st, cfg, sp, &t, log); err != nil {
					return err
				}
			}
			return nil
		})
	}
	var lst listing
	emit := func(t Tile) error {
		if cfg.Progress != nil {
			cfg.Progress.Found(1)
		}
		select {
		case tiles <- t:
			return nil
		case <-gctx.Done():
			return context.Cause(gctx)
		}
	}
	skip := func(o storage.Object) {
		lst.skipped.add(SkippedEntry{Path: DisplayName(o.Key), Detail: DisplayName(o.Err.Error())})
	}
	grp := newGrouper(storage.ListsInOrder(cfg.Storage), emit, skip)
	sizedByRead := storage.SizesByRead(cfg.Storage)
	w := storage.Walker{MaxObjects: cfg.MaxObjects, MaxFolders: cfg.MaxFolders,
		NeedSize: func(o storage.Object) bool { return needSize(o, sizedByRead, cfg.State != nil) }}
	walkErr := w.WalkPages(gctx, st, func(l storage.Listed) error {
		lst.listed += len(l.Objects)
		l.Objects = slices.DeleteFunc(l.Objects, func(o storage.Object) bool {
			if len(o.Key) <= maxKey {
				return false
			}
			lst.skipped.add(SkippedEntry{Path: DisplayName(runePrefix(o.Key, maxShownKey)) + "…",
				Detail: fmt.Sprintf("a name of %d bytes: no storage serves one longer than %d", len(o.Key), maxKey)})
			return true
		})
		return grp.page(l)
	})
	if walkErr == nil {
		walkErr = grp.finish()
	}
	close(tiles)
	err := g.Wait()
	if cfg.Progress != nil {
		cfg.Progress.Finish()
	}
	if walkErr != nil {
		return listing{}, fmt.Errorf("listing %s: %w", storage.Redact(cfg.Location), walkErr)
	}
	if err != nil {
		return listing{}, err
	}
	slices.SortFunc(lst.skipped.kept, compareSkipped)
	return lst, nil
}

// maxKey bounds an object's name: S3 keys stop at 1,024 bytes and Linux
// paths at 4,096, but a web listing's link can run to megabytes, and the
// spool's index holds names whole. A longer one is skipped, shown by its
// first maxShownKey bytes.
const (
	maxKey      = 4096
	maxShownKey = 256
)

// runePrefix is s cut to at most n bytes, never inside a valid UTF-8
// sequence; stray bytes (a name in another encoding) are cut where they
// stand.
func runePrefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for k := 1; k < utf8.UTFMax && k <= n; k++ {
		if utf8.RuneStart(s[n-k]) {
			if _, size := utf8.DecodeRuneInString(s[n-k:]); size > k {
				return s[:n-k] // the sequence starting there runs past n
			}
			break
		}
	}
	return s[:n]
}

// judgeAndSpool gives one tile its verdict and spools it.
func judgeAndSpool(ctx context.Context, st storage.Storage, cfg Config, sp *spool, t *Tile, log *slog.Logger) error {
	if err := judge(ctx, st, cfg.State, t, log); err != nil {
		return err
	}
	if t.Problem != nil {
		log.Warn("tile set aside", "path", t.Object.Key, "reason", t.Problem.Reason, "detail", t.Problem.Detail)
	}
	if err := sp.add(t); err != nil {
		return err
	}
	if cfg.Progress != nil {
		cfg.Progress.Advance(1)
	}
	return nil
}

// forget drops from the state the tiles the storage no longer lists.
func forget(st State, sp *spool, log *slog.Logger) {
	if st == nil {
		return
	}
	if n, err := st.Prune(sp.has); err != nil {
		log.Warn("forgetting deleted tiles", "error", err)
	} else if n > 0 {
		log.Info("forgot deleted tiles", "tiles", n)
	}
}

// judge gives one tile its verdict, from the state when unchanged, else by
// reading its header. A panic while doing so is this tile's problem, never
// the scan's: the tile is set aside and the stack logged for a bug report.
// Such a verdict is not remembered, so a fixed release reads the tile again.
func judge(ctx context.Context, st storage.Storage, s State, t *Tile, log *slog.Logger) (err error) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		log.Error("internal error reading a tile", "path", t.Object.Key, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		t.Header, t.Polygon, t.placed, t.Reused = nil, footprint.Tile{}, nil, false
		t.Problem = &ProblemEntry{Reason: ReasonCorrupt, Detail: fmt.Sprintf("internal error while reading this tile (%v): please report it", v)}
		err = nil
	}()
	if p, permanent := unusable(t); p != nil {
		t.Problem, t.permanent = p, permanent
		return nil
	}
	if recall(s, t, log) {
		return nil
	}
	inspect(ctx, st, t)
	if err := ctx.Err(); err != nil {
		return err
	}
	if t.Problem != nil && t.placed == nil {
		t.placed = lastPlace(s, t.Object.Key)
	}
	remember(s, t, log)
	return nil
}

// lastPlace is where the state last saw the tile stand, nil when it never
// did: read before remember replaces the record.
func lastPlace(st State, key string) *footprint.Tile {
	if st == nil {
		return nil
	}
	var r record
	if ok, err := st.Get(key, &r); err != nil || !ok {
		return nil
	}
	if r.Header != nil {
		p := placement(r.Header)
		return &p
	}
	return r.Placed
}

// needSize says whether a listed object must be sized before it is read:
// a tile or a sidecar GDAL may read (its size must be known before GDAL
// opens it), unless the storage's reads tell the size
// (storage.SizingReader): Apache's and lighttpd's listings round sizes,
// and a HEAD per file would double the requests. A tile listed with no
// date either is sized all the same when a state is kept: the HEAD's
// ETag and date are what lets the next scan know it unchanged.
func needSize(o storage.Object, sizedByRead, stateful bool) bool {
	if !IsTile(o.Key) && !raster.IsSidecar(o.Key) {
		return false
	}
	if !sizedByRead {
		return true
	}
	return stateful && IsTile(o.Key) && o.ModTime.IsZero() && o.ETag == ""
}

// listing is what the walk told besides the tiles: what could not be
// used, and how many objects were listed in all.
type listing struct {
	skipped skippedList
	listed  int
}

// maxSkipped bounds the skipped objects a report lists: a hostile listing
// can name millions the walk cannot use (10,000,000 objects pass the
// walk's bounds), each a path and a sentence in memory until the report
// is written. All are counted (Report.SkippedTotal); those listed are the
// first by path, whatever the order they came in.
var maxSkipped = 10_000

// skippedList keeps the first maxSkipped entries by path: a heap whose
// top is the last of them, replaced by any that comes before it.
type skippedList struct {
	kept  []SkippedEntry
	total int
}

func (l *skippedList) add(e SkippedEntry) {
	l.total++
	if len(l.kept) < maxSkipped {
		heap.Push((*skippedHeap)(&l.kept), e)
		return
	}
	if len(l.kept) > 0 && compareSkipped(e, l.kept[0]) < 0 {
		l.kept[0] = e
		heap.Fix((*skippedHeap)(&l.kept), 0)
	}
}

// compareSkipped orders entries by path, then detail: one order whatever
// the listing's.
func compareSkipped(a, b SkippedEntry) int {
	return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.Detail, b.Detail))
}

// skippedHeap is a max-heap: its top is the entry the next smaller one
// replaces.
type skippedHeap []SkippedEntry

func (h skippedHeap) Len() int           { return len(h) }
func (h skippedHeap) Less(i, j int) bool { return compareSkipped(h[i], h[j]) > 0 }
func (h skippedHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *skippedHeap) Push(x any)        { *h = append(*h, x.(SkippedEntry)) }
func (h *skippedHeap) Pop() any {
	x := (*h)[len(*h)-1]
	*h = (*h)[:len(*h)-1]
	return x
}

// SkippedEntry is an object or folder the walk listed but could not use
// (a folder looping back on itself, a name the storage cannot address, a
// file that could not be sized). A skipped tile is a problem instead.
type SkippedEntry struct {
	Path   string `json:"path"`
	Detail string `json:"detail"`
}

// retryReason names a retried failure for metrics, from a fixed set.
func retryReason(err error) string {
	if errors.Is(err, storage.ErrRequestTimeout) {
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	if errors.Is(err, storage.ErrTransient) {
		return "transient"
	}
	return "network"
}

// unusable is the problem of a tile the walk listed but could not size or
// address, or whose sidecar it could not: GDAL would not read it as it
// reads the file in place, so its header is not read at all. permanent
// says the storage will never address it (a name it refuses, a link out of
// the root): that is the tile's problem, not a storage failing.
func unusable(t *Tile) (p *ProblemEntry, permanent bool) {
	if err := t.Object.Err; err != nil {
		return &ProblemEntry{Reason: ReasonUnreachable, Detail: err.Error()}, isPermanent(err)
	}
	for _, s := range t.Siblings {
		if s.Err != nil && raster.IsSidecar(s.Key) {
			return &ProblemEntry{Reason: ReasonUnreachable, Detail: fmt.Sprintf("its sidecar %s cannot be read: %v", s.Key, s.Err)}, isPermanent(s.Err)
		}
	}
	return nil, false
}

func isPermanent(err error) bool {
	return errors.Is(err, storage.ErrBadKey) || errors.Is(err, storage.ErrLoop)
}

// recall takes the tile's verdict from the state when the object has not
// changed since.
func recall(st State, t *Tile, log *slog.Logger) bool {
	if st == nil {
		return false
	}
	var r record
	ok, err := st.Get(t.Object.Key, &r)
	if err != nil {
		log.Warn("reading the state", "path", t.Object.Key, "error", err)
		return false
	}
	if !ok || !r.unchanged(t.Object) || (r.Header == nil) == (r.Problem == nil) {
		return false
	}
	t.Reused = true
	if r.Problem != nil {
		t.Problem, t.placed = r.Problem, r.Placed
		return true
	}
	if t.Object.Size == storage.SizeUnknown {
		t.Object.Size = r.Size // what the first scan's HEAD or read told
	}
	place(t, r.Header)
	return true
}

// remember records the verdict as soon as it is known, so that a scan
// stopped half-way resumes here. Unreachable tiles are tried again.
func remember(st State, t *Tile, log *slog.Logger) {
	if st == nil || t.Problem != nil && t.Problem.Reason == ReasonUnreachable {
		return
	}
	r := record{Size: t.Object.Size, ETag: t.Object.ETag, ModTime: t.Object.ModTime, Header: t.Header, Problem: t.Problem}
	if t.Problem != nil {
		r.Placed = t.placed
	}
	if err := st.Put(t.Object.Key, r); err != nil {
		log.Warn("writing the state", "path", t.Object.Key, "error", err)
	}
}

// inspect reads one tile's header and classifies it.
func inspect(ctx context.Context, st storage.Storage, t *Tile) {
	// unusable has set aside every tile with a sibling in error.
	siblings := make([]raster.File, len(t.Siblings))
	for i, s := range t.Siblings {
		siblings[i] = rasterFile(s)
	}
	h, err := raster.Inspect(ctx, st, rasterFile(t.Object), siblings)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		t.Problem = classify(err)
		var p *raster.Problem
		if errors.As(err, &p) && p.Header != nil {
			placed := placement(p.Header)
			t.placed = &placed
		}
		return
	}
	place(t, h)
}

// rasterFile is o as raster.Inspect takes it.
func rasterFile(o storage.Object) raster.File {
	if o.Size == storage.SizeUnknown {
		return raster.File{Key: o.Key, Size: raster.SizeUnknown}
	}
	return raster.File{Key: o.Key, Size: o.Size}
}

// place sets the tile's header and footprint, and its size when only
// the read told it.
func place(t *Tile, h *raster.Header) {
	if t.Object.Size == storage.SizeUnknown && h.Size > 0 {
		t.Object.Size = h.Size
	}
	t.Header = h
	t.Polygon = placement(h)
}

// placement is a tile's footprint in its CRS.
func placement(h *raster.Header) footprint.Tile {
	ft := footprint.Tile{EPSG: h.EPSG}
	if h.NorthUp() {
		b := h.Box()
		ft.Box = footprint.Box{MinX: b[0], MinY: b[1], MaxX: b[2], MaxY: b[3]}
	} else {
		c := h.Corners()
		ft.Quad = orb.Polygon{{c[0], c[1], c[2], c[3], c[0]}}
		footprint.Orient(orb.MultiPolygon{ft.Quad})
	}
	return ft
}

func classify(err error) *ProblemEntry {
	var p *raster.Problem
	if errors.As(err, &p) {
		reason := ReasonCorrupt
		switch {
		case errors.Is(err, raster.ErrEmpty):
			reason = ReasonEmpty
		case errors.Is(err, raster.ErrNotGeoreferenced):
			reason = ReasonNotGeoreferenced
		case errors.Is(err, raster.ErrNoCRS):
			reason = ReasonNoCRS
		case errors.Is(err, raster.ErrMisplaced):
			reason = ReasonMisplaced
		}
		return &ProblemEntry{Reason: reason, Detail: p.Detail}
	}
	detail := err.Error()
	if errors.Is(err, storage.ErrNotFound) {
		detail = "the object disappeared after it was listed: " + detail
	}
	return &ProblemEntry{Reason: ReasonUnreachable, Detail: detail}
}
