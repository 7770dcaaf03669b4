package indexer_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airbusgeo/godal"
	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage/httpdir"
	"github.com/openpcrs/pcrs-indexer/tilegen"
)

const (
	benchTiles   = 2000
	benchFolders = 10
	benchLatency = 20 * time.Millisecond
	// benchPerKind distinct masters of each kind are hard-linked under
	// every tile name: generating 2,000 tiles would take minutes, and the
	// headers are what count.
	benchPerKind = 2
)

// mixedKinds are the tile kinds a PCRS delivery mixes, with the header
// layouts that cost a header reader differently: JPEG 2000 with its
// GMLJP2 box, a tiled JPEG GeoTIFF (small offset arrays), and a striped
// uncompressed GeoTIFF with 2,000 strips (16 KB of offset arrays).
var mixedKinds = []struct {
	name, ext string
	tile      tilegen.Tile
}{
	{"jp2-gmljp2", ".jp2", tilegen.Tile{Driver: "JP2OpenJPEG", EPSG: 2154, Width: 2000, Pixel: 0.1, Creation: []string{"QUALITY=40", "GMLJP2=YES"}}},
	{"gtiff-jpeg-tiled", ".tif", tilegen.Tile{EPSG: 2154, Width: 2000, Pixel: 0.1, Creation: []string{"COMPRESS=JPEG", "PHOTOMETRIC=YCBCR", "TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256"}}},
	{"gtiff-raw-2000-strips", ".tif", tilegen.Tile{EPSG: 2154, Width: 1000, Height: 2000, Pixel: 0.2, Creation: []string{"BLOCKYSIZE=1"}}},
}

// writeMasters writes perKind distinct tiles of every mixed kind into dir,
// side by side on a row of 200 m tiles, and returns their paths with the
// kinds interleaved (JPEG 2000, JPEG GeoTIFF, striped GeoTIFF, JPEG 2000…).
func writeMasters(b *testing.B, dir string, perKind int) []string {
	b.Helper()
	masters := make([]string, perKind*len(mixedKinds))
	errs := make([]error, len(masters))
	var wg sync.WaitGroup
	for i := range masters {
		k := mixedKinds[i%len(mixedKinds)]
		tile := k.tile
		tile.X, tile.Y = 650000+float64(i)*200, 6230400
		masters[i] = filepath.Join(dir, fmt.Sprintf("master-%d-%s%s", i, k.name, k.ext))
		wg.Go(func() { errs[i] = tile.Write(masters[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	return masters
}

// layTiles hard-links n tiles into folders below root, cycling through the
// masters, and returns their paths relative to root.
func layTiles(b *testing.B, masters []string, root string, n, folders int) []string {
	b.Helper()
	rels := make([]string, n)
	for i := range rels {
		m := masters[i%len(masters)]
		rels[i] = fmt.Sprintf("zone-%02d/PCRS_%04d%s", i%folders, i, filepath.Ext(m))
		dst := filepath.Join(root, filepath.FromSlash(rels[i]))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.Link(m, dst); err != nil {
			b.Fatal(err)
		}
	}
	return rels
}

// remote is a storage of benchTiles mixed tiles served by nginx behind a
// proxy that delays every answer by benchLatency.
type remote struct {
	url     string // the listing root, through the latency proxy
	log     string // nginx's access log
	tileURL []string
}

func newRemote(b *testing.B) *remote {
	b.Helper()
	root, err := os.MkdirTemp("", "pcrs-bench-*")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(root) })
	masters := writeMasters(b, root, benchPerKind)
	tiles := filepath.Join(root, "tiles")
	r := &remote{tileURL: layTiles(b, masters, tiles, benchTiles, benchFolders)}
	servertest.OpenUp(b, tiles)
	srv := servertest.Nginx(b, tiles, false)
	u, _ := url.Parse(srv.URL)
	proxy := servertest.NewProxy(b, u.Host, benchLatency)
	r.url = strings.Replace(srv.URL, u.Host, proxy.Addr, 1)
	r.log = srv.AccessLog
	for i, rel := range r.tileURL {
		r.tileURL[i] = r.url + rel
	}
	return r
}

// served counts the requests nginx logged and the body bytes it sent.
func (r *remote) served(b *testing.B) (requests, bytes int64) {
	b.Helper()
	f, err := os.Open(r.log)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// combined: ... "GET /x HTTP/1.1" 206 16384 "-" "agent"
		_, after, ok := strings.Cut(sc.Text(), `" `)
		if !ok {
			continue
		}
		fields := strings.Fields(after)
		if len(fields) < 2 {
			continue
		}
		requests++
		if n, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
			bytes += n
		}
	}
	return requests, bytes
}

type side struct {
	tilesPerSec, requestsPerTile, bytesPerTile float64
}

func (s side) report(b *testing.B) {
	b.ReportMetric(s.tilesPerSec, "tiles/s")
	b.ReportMetric(s.requestsPerTile, "requests/tile")
	b.ReportMetric(s.bytesPerTile, "bytes/tile")
	b.ReportMetric(0, "ns/op") // whole scans: tiles/s says it
}

// BenchmarkRemoteScan scans 2,000 mixed tiles (JPEG 2000, tiled JPEG
// GeoTIFF, striped GeoTIFF) served by nginx behind 20 ms of latency, with
// pcrs-indexer at its default concurrency and, as the baseline, with GDAL
// /vsicurl/ at default settings from as many goroutines (each one opening
// tiles one after the other, as the scanner we replace did). Requests and
// bytes are counted on both sides from nginx's access log, listings
// included. Run it with -benchtime 1x: a second pass would measure warm
// caches.
func BenchmarkRemoteScan(b *testing.B) {
	r := newRemote(b)
	concurrency := indexer.DefaultConcurrency
	var ours, theirs side

	b.Run("pcrs-indexer", func(b *testing.B) {
		for b.Loop() {
			req0, bytes0 := r.served(b)
			u, _ := url.Parse(r.url)
			st, err := httpdir.New(u, "", nil)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			res, err := indexer.Scan(context.Background(), indexer.Config{Storage: st, Location: r.url, Name: "bench", Concurrency: concurrency})
			elapsed := time.Since(start)
			st.Close()
			if err != nil {
				b.Fatal(err)
			}
			if res.Report.Counts.Readable != benchTiles {
				b.Fatalf("%d readable tiles, want %d: %+v", res.Report.Counts.Readable, benchTiles, problemsOf(b, res)[:min(3, res.Report.Counts.Problems)])
			}
			req1, bytes1 := r.served(b)
			ours = side{benchTiles / elapsed.Seconds(), float64(req1-req0) / benchTiles, float64(bytes1-bytes0) / benchTiles}
			if got := res.Report.IO.Requests; got != req1-req0 {
				b.Errorf("report.json counts %d requests, nginx served %d", got, req1-req0)
			}
		}
		ours.report(b)
	})

	b.Run(fmt.Sprintf("gdal-vsicurl-%d", concurrency), func(b *testing.B) {
		godal.RegisterAll()
		for b.Loop() {
			req0, bytes0 := r.served(b)
			start := time.Now()
			var next atomic.Int64
			var wg sync.WaitGroup
			var failed atomic.Int64
			for range concurrency {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(len(r.tileURL)) {
							return
						}
						if !openLikeTheOldScanner(r.tileURL[i]) {
							failed.Add(1)
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			if failed.Load() > 0 {
				b.Fatalf("%d tiles failed through /vsicurl/", failed.Load())
			}
			req1, bytes1 := r.served(b)
			theirs = side{benchTiles / elapsed.Seconds(), float64(req1-req0) / benchTiles, float64(bytes1-bytes0) / benchTiles}
		}
		theirs.report(b)
	})

	if ours.tilesPerSec == 0 || theirs.tilesPerSec == 0 {
		return // a side failed, or was filtered out
	}
	head := fmt.Sprintf("remote scan, %d mixed tiles, nginx + %v latency, %d at once:", benchTiles, benchLatency, concurrency)
	fmt.Printf("%s pcrs-indexer %.0f tiles/s, %.3f requests/tile, %.0f bytes/tile\n", head, ours.tilesPerSec, ours.requestsPerTile, ours.bytesPerTile)
	fmt.Printf("%s GDAL /vsicurl/ %.0f tiles/s, %.3f requests/tile, %.0f bytes/tile\n", head, theirs.tilesPerSec, theirs.requestsPerTile, theirs.bytesPerTile)
	speed := ours.tilesPerSec / theirs.tilesPerSec
	fmt.Printf("remote scan ratio, pcrs-indexer / GDAL /vsicurl/ at equal concurrency: %.2fx tiles/s, %.2fx requests/tile, %.2fx bytes/tile\n",
		speed, ours.requestsPerTile/theirs.requestsPerTile, ours.bytesPerTile/theirs.bytesPerTile)
	if speed < remoteMinSpeedup {
		b.Errorf("pcrs-indexer scans %.2fx GDAL /vsicurl/'s tiles/s at equal concurrency; it must stay above %.2fx", speed, remoteMinSpeedup)
	}
	if ours.requestsPerTile > 1.05 {
		b.Errorf("%.3f requests per tile, listings included; the goal is at most 1.05", ours.requestsPerTile)
	}
}

// remoteMinSpeedup is the tiles/s ratio over GDAL /vsicurl/ at equal
// concurrency below which BenchmarkRemoteScan fails. Measured on 2 cores
// (GDAL 3.6.2): 3.1x to 4.4x; GDAL /vsicurl/ tops out near 650 tiles/s from
// 64 goroutines (128 do no better), so the threshold keeps a margin of
// over 1.5x against noise while still failing if the lead halves.
const remoteMinSpeedup = 2.0

// openLikeTheOldScanner reads what the Node.js scanner read: size, bands,
// geotransform and CRS, through /vsicurl/ with GDAL's defaults.
func openLikeTheOldScanner(u string) bool {
	ds, err := godal.Open("/vsicurl/"+u, godal.RasterOnly())
	if err != nil {
		return false
	}
	defer ds.Close()
	_ = ds.Structure()
	for _, band := range ds.Bands() {
		_ = band.ColorInterp()
	}
	_, err = ds.GeoTransform()
	return err == nil && ds.Projection() != ""
}
