package raster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/airbusgeo/godal"
)

// vsiPrefix is the GDAL virtual file system prefix of our handler. A file
// name is vsiPrefix + "<open id>/<object key>": the id routes GDAL's reads to
// the object being inspected, the key keeps the real name and extension for
// GDAL's driver identification and error messages.
const vsiPrefix = "/vsipcrs/"

// BlockSize is the unit of storage reads. A PCRS tile's header (TIFF IFD and
// tile offsets, JPEG 2000 boxes and main codestream header) fits in it, so a
// tile costs one ranged read.
const BlockSize = 64 << 10

// headerBudget caps the bytes fetched for one tile, its siblings included:
// a PCRS header takes a block or two, so a tile that needs more is set
// aside as corrupt rather than read at the storage's expense.
const headerBudget = 4 << 20

var (
	registerOnce sync.Once
	registerErr  error
	nextOpenID   atomic.Uint64
	opens        sync.Map // open id (string) → *openObject
)

// register installs the VSI handler once per process. GDAL's own per-handle
// cache is disabled (buffer size 0): our per-object block cache serves every
// handle GDAL opens on the same object (GDAL reopens JPEG 2000 files to
// read their GML box), so a reopen costs no request.
func register() error {
	registerOnce.Do(func() {
		godal.RegisterAll()
		installErrorHandler()
		registerErr = godal.RegisterVSIHandler(vsiPrefix, vsiHandler{}, godal.VSIHandlerBufferSize(0), godal.VSIHandlerCacheSize(0), godal.VSIHandlerStripPrefix(true))
	})
	return registerErr
}

// openObject is one object being inspected, with the listed siblings GDAL
// may ask for, all read through one block cache per file.
type openObject struct {
	ctx context.Context
	src Source

	mu         sync.Mutex
	files      map[string]*cachedFile // key → file: the tile, then its siblings
	firstErr   error                  // first storage error, to tell unreachable from corrupt
	spent      int64                  // bytes fetched, against headerBudget
	overBudget *Problem               // set when a fetch would exceed headerBudget
}

// addFiles lets GDAL see more objects (the tile's siblings). Until then
// GDAL's probes for them, which some drivers make whatever the sibling
// list says, are answered "absent" without a request.
func (o *openObject) addFiles(files []File) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, f := range files {
		if _, ok := o.files[f.Key]; !ok {
			o.files[f.Key] = &cachedFile{key: f.Key, size: f.Size, listed: f.Size >= 0, blocks: map[int64][]byte{}}
		}
	}
}

func (o *openObject) file(key string) *cachedFile {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.files[key]
}

// storageErr is why reading must stop, whatever GDAL or a parser made of
// the bytes: the context ended or the storage failed (returned as is, never
// a verdict on the tile), or the header budget ran out (a *Problem).
func (o *openObject) storageErr() error {
	if err := o.ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.firstErr != nil {
		return o.firstErr
	}
	if o.overBudget != nil {
		return o.overBudget
	}
	return nil
}

// spend charges n fetched bytes to the open object's budget.
func (o *openObject) spend(key string, n int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.spent+n > headerBudget {
		if o.overBudget == nil {
			o.overBudget = problem(ErrCorrupt, "reading the header needs more than the %d MiB limit per tile (%d bytes of %s asked after %d bytes read)", headerBudget>>20, n, key, o.spent)
		}
		return o.overBudget
	}
	o.spent += n
	return nil
}

func (o *openObject) recordErr(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.firstErr == nil {
		o.firstErr = err
	}
}

// cachedFile holds the blocks of one object fetched so far.
type cachedFile struct {
	key  string
	size int64 // SizeUnknown until ensureSize learned it: read it only after
	// ensureSize unless listed is set
	listed bool // the size came from the listing; never changes

	sizeOnce sync.Once
	sizeErr  error

	mu     sync.Mutex
	blocks map[int64][]byte // block index → bytes (the last one may be short)
}

// readAt serves p from the cache, fetching each run of missing blocks with a
// single storage read.
func (f *cachedFile) readAt(o *openObject, p []byte, off int64) (int, error) {
	// A cancelled scan stops GDAL at its next read, cached or not.
	if err := o.ctx.Err(); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", f.key, off)
	}
	if err := f.ensureSize(o); err != nil {
		return 0, err
	}
	if off >= f.size {
		return 0, io.EOF
	}
	want := p
	if rest := f.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	first, last := off/BlockSize, (off+int64(len(want))-1)/BlockSize
	f.mu.Lock()
	defer f.mu.Unlock()
	for b := first; b <= last; {
		if _, ok := f.blocks[b]; ok {
			b++
			continue
		}
		runEnd := b
		for runEnd+1 <= last {
			if _, ok := f.blocks[runEnd+1]; ok {
				break
			}
			runEnd++
		}
		if err := f.fetch(o, b, runEnd); err != nil {
			return 0, err
		}
		b = runEnd + 1
	}
	n := 0
	for n < len(want) {
		pos := off + int64(n)
		blk := f.blocks[pos/BlockSize]
		n += copy(want[n:], blk[pos%BlockSize:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// peek returns n bytes at off when they are already fetched: the header
// parsers use it to look without ever costing a storage request.
func (f *cachedFile) peek(o *openObject, off int64, n int) ([]byte, bool) {
	if !f.listed && f.ensureSize(o) != nil { // costs no request: the parsers peek into a sized tile
		return nil, false
	}
	if off < 0 || n <= 0 || off+int64(n) > f.size || !f.cached(off, n) {
		return nil, false
	}
	b := make([]byte, n)
	_, err := f.readAt(o, b, off)
	return b, err == nil
}

// cached says whether n bytes at off are already in the cache.
func (f *cachedFile) cached(off int64, n int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for b := off / BlockSize; b <= (off+int64(n)-1)/BlockSize; b++ {
		if _, ok := f.blocks[b]; !ok {
			return false
		}
	}
	return true
}

func (f *cachedFile) fetch(o *openObject, first, last int64) error {
	start := first * BlockSize
	end := min((last+1)*BlockSize, f.size)
	if err := o.ctx.Err(); err != nil {
		o.recordErr(err)
		return err
	}
	if err := o.spend(f.key, end-start); err != nil {
		return err
	}
	buf := make([]byte, end-start)
	n, err := o.src.ReadAt(o.ctx, f.key, buf, start)
	if err != nil && !(errors.Is(err, io.EOF) && int64(n) == end-start) {
		if errors.Is(err, io.EOF) {
			// The listing said the object was larger: it changed under us.
			err = fmt.Errorf("%s: object shorter than listed (%d bytes at %d, %d expected): %w", f.key, n, start, end-start, err)
		}
		o.recordErr(err)
		return err
	}
	for b := first; b <= last; b++ {
		lo := (b - first) * BlockSize
		hi := min(lo+BlockSize, int64(len(buf)))
		f.blocks[b] = buf[lo:hi]
	}
	return nil
}

// ensureSize learns the size of a file listed without one, once.
func (f *cachedFile) ensureSize(o *openObject) error {
	if f.listed {
		return nil
	}
	f.sizeOnce.Do(func() { f.sizeErr = f.learnSize(o) })
	return f.sizeErr
}

// learnSize fetches the first block of a file listed without a size,
// taking its size from the same answer: GDAL must know a file's size
// before it opens it, and asking for it apart would cost a request.
func (f *cachedFile) learnSize(o *openObject) error {
	ss, ok := o.src.(SizingSource)
	if !ok {
		return fmt.Errorf("%s: listed without a size, and the storage cannot tell it from a read", f.key)
	}
	if err := o.spend(f.key, BlockSize); err != nil {
		return err
	}
	buf := make([]byte, BlockSize)
	n, size, err := ss.ReadAtSize(o.ctx, f.key, buf, 0)
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		o.recordErr(err)
		return err
	case errors.Is(err, io.EOF) && (size < 0 || size == int64(n)):
		size = int64(n) // ended within the block: this is the whole object
	case size < 0:
		err := fmt.Errorf("%s: listed without a size, and the storage's answer did not say it", f.key)
		o.recordErr(err)
		return err
	case size < int64(n) || (size > int64(n) && n < BlockSize):
		err := fmt.Errorf("%s: the storage says %d bytes but sent %d at offset 0", f.key, size, n)
		o.recordErr(err)
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.size = size // read by others only after sizeOnce
	if n > 0 {
		f.blocks[0] = buf[:n]
	}
	return nil
}

// vsiHandler routes GDAL's callbacks to the open objects.
type vsiHandler struct{}

func lookup(name string) (*openObject, *cachedFile, error) {
	id, key, ok := strings.Cut(name, "/")
	if !ok {
		return nil, nil, fmt.Errorf("%s: malformed virtual path", name)
	}
	v, ok := opens.Load(id)
	if !ok {
		return nil, nil, fmt.Errorf("%s: object no longer open", name)
	}
	o := v.(*openObject)
	o.mu.Lock()
	f, ok := o.files[key]
	o.mu.Unlock()
	if !ok {
		// GDAL probing for a file the listing did not show: answer without
		// asking the storage.
		return o, nil, fmt.Errorf("%s: not in the listing", key)
	}
	return o, f, nil
}

func (vsiHandler) Size(name string) (int64, error) {
	o, f, err := lookup(name)
	if err != nil {
		return -1, err
	}
	if err := f.ensureSize(o); err != nil {
		return -1, err
	}
	return f.size, nil
}

func (vsiHandler) ReadAt(name string, p []byte, off int64) (int, error) {
	o, f, err := lookup(name)
	if err != nil {
		return 0, err
	}
	return f.readAt(o, p, off)
}

// open registers an object for GDAL and returns its virtual name and a
// function that unregisters it.
func open(ctx context.Context, src Source, obj File) (*openObject, string, func()) {
	id := strconv.FormatUint(nextOpenID.Add(1), 10)
	o := &openObject{ctx: ctx, src: src, files: map[string]*cachedFile{}}
	o.addFiles([]File{obj})
	opens.Store(id, o)
	return o, vsiPrefix + id + "/" + obj.Key, func() { opens.Delete(id) }
}
