package indexer

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/openpcrs/pcrs-indexer/raster"
	"github.com/openpcrs/pcrs-indexer/storage"
)

// ErrUnordered is a storage that promised its listing in key order and
// broke the promise: a tile may have been read before its sidecar was
// listed, so the scan cannot vouch for its verdicts.
var ErrUnordered = errors.New("the storage listed keys out of order")

// maxOpenStems bounds the stems an ordered listing keeps open at once:
// only stems that are prefixes of one another can be (x., x.y/a.…).
const maxOpenStems = 64

// grouper hands tiles on to the readers with their sidecars (the objects of
// their folder sharing their stem: x.tfw, x.jp2.aux.xml…) as soon as no
// sidecar of theirs can still be listed: when their folder's listing is
// done, or, on a storage listing in key order, as soon as the listing has
// gone past their stem. So reading starts with the first pages, and memory
// holds a folder at most, never the whole storage.
type grouper struct {
	ordered bool
	emit    func(Tile) error
	// skip receives an object that is neither usable nor a tile.
	skip func(storage.Object)

	chains map[string]*chain
}

// chain is one listing (a folder, or a flat storage's whole listing)
// still going on.
type chain struct {
	last    string
	pending []storage.Object // unordered: the whole folder so far
	open    []stemGroup      // ordered: stems the listing may still add to
}

type stemGroup struct {
	prefix  string // dir + stem + "."
	objects []storage.Object
}

func newGrouper(ordered bool, emit func(Tile) error, skip func(storage.Object)) *grouper {
	return &grouper{ordered: ordered, emit: emit, skip: skip, chains: map[string]*chain{}}
}

// page takes one listing page; the walk calls it one page at a time.
func (g *grouper) page(l storage.Listed) error {
	c := g.chains[l.Chain]
	if c == nil {
		c = &chain{}
		g.chains[l.Chain] = c
	}
	for _, o := range l.Objects {
		if o.Err != nil && !IsTile(o.Key) && !raster.IsSidecar(o.Key) {
			g.skip(o)
			continue
		}
		if o.Err != nil && !IsTile(o.Key) {
			g.skip(o) // said in the report, and kept: its tile must not be read as if it were absent
		}
		if err := g.add(c, o); err != nil {
			return err
		}
	}
	if !l.Done {
		return nil
	}
	delete(g.chains, l.Chain)
	return g.flush(c)
}

func (g *grouper) add(c *chain, o storage.Object) error {
	if !g.ordered {
		c.pending = append(c.pending, o)
		return nil
	}
	if c.last != "" && o.Key <= c.last {
		return fmt.Errorf("%w: %q came after %q", ErrUnordered, o.Key, c.last)
	}
	c.last = o.Key
	// Every stem that is not a prefix of this key is complete: keys
	// sharing a prefix are listed together.
	for len(c.open) > 0 && !strings.HasPrefix(o.Key, c.open[len(c.open)-1].prefix) {
		if err := g.emitGroup(c.open[len(c.open)-1].objects); err != nil {
			return err
		}
		c.open = c.open[:len(c.open)-1]
	}
	p := stemPrefix(o.Key)
	if n := len(c.open); n > 0 && c.open[n-1].prefix == p {
		c.open[n-1].objects = append(c.open[n-1].objects, o)
		return nil
	}
	if len(c.open) >= maxOpenStems {
		return fmt.Errorf("%w: %q nests more than %d stems", storage.ErrTooLarge, o.Key, maxOpenStems)
	}
	c.open = append(c.open, stemGroup{prefix: p, objects: []storage.Object{o}})
	return nil
}

// flush hands on what a finished chain still holds.
func (g *grouper) flush(c *chain) error {
	for i := len(c.open) - 1; i >= 0; i-- {
		if err := g.emitGroup(c.open[i].objects); err != nil {
			return err
		}
	}
	byStem := map[string][]storage.Object{}
	var order []string
	for _, o := range c.pending {
		p := stemPrefix(o.Key)
		if _, ok := byStem[p]; !ok {
			order = append(order, p)
		}
		byStem[p] = append(byStem[p], o)
	}
	for _, p := range order {
		if err := g.emitGroup(byStem[p]); err != nil {
			return err
		}
	}
	return nil
}

// finish hands on the chains a failed or bounded walk left open; a walk
// that succeeded has none.
func (g *grouper) finish() error {
	for k, c := range g.chains {
		delete(g.chains, k)
		if err := g.flush(c); err != nil {
			return err
		}
	}
	return nil
}

// emitGroup hands on each tile of one stem with the others as siblings.
func (g *grouper) emitGroup(objects []storage.Object) error {
	var siblings []storage.Object
	for _, o := range objects {
		if !IsTile(o.Key) {
			siblings = append(siblings, o)
		}
	}
	for _, o := range objects {
		if IsTile(o.Key) {
			if err := g.emit(Tile{Object: o, Siblings: siblings}); err != nil {
				return err
			}
		}
	}
	return nil
}

// stemPrefix is the key up to its file name's first dot, dot included:
// every object sharing it is a sidecar candidate of the tile.
func stemPrefix(key string) string {
	dir, name := path.Split(key)
	if i := strings.IndexByte(name, '.'); i > 0 {
		return dir + name[:i+1]
	}
	return key + "."
}
