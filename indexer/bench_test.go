package indexer_test

import (
	"bufio"
	"context"
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
)

// remote is a storage of benchTiles JPEG 2000 tiles served by nginx
// behind a proxy that delays every answer by benchLatency.
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
	// A few distinct tiles, hard-linked under many names: generating 2,000
	// JPEG 2000 tiles would take minutes, and the headers are what count.
	var masters []string
	for i := range 4 {
		m := filepath.Join(root, fmt.Sprintf("master-%d.jp2", i))
		tile := tilegen.Tile{Driver: "JP2OpenJPEG", EPSG: 2154, Width: 2000, Pixel: 0.1, X: 650000 + float64(i)*200, Y: 6230200, Creation: []string{"QUALITY=40"}}
		if err := tile.Write(m); err != nil {
			b.Fatal(err)
		}
		masters = append(masters, m)
	}
	tiles := filepath.Join(root, "tiles")
	r := &remote{}
	for i := range benchTiles {
		rel := fmt.Sprintf("zone-%02d/PCRS_%04d.jp2", i%benchFolders, i)
		dst := filepath.Join(tiles, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.Link(masters[i%len(masters)], dst); err != nil {
			b.Fatal(err)
		}
		r.tileURL = append(r.tileURL, rel)
	}
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

// BenchmarkRemoteScan scans 2,000 tiles served by nginx behind 20 ms of
// latency, with pcrs-indexer at its default concurrency and, as the
// baseline, with GDAL /vsicurl/ at default settings from 8 threads (how the
// scanner we replace worked). Run it with -benchtime 1x: a second pass would
// measure warm caches.
func BenchmarkRemoteScan(b *testing.B) {
	r := newRemote(b)
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
			res, err := indexer.Scan(context.Background(), indexer.Config{Storage: st, Location: r.url, Name: "bench"})
			elapsed := time.Since(start)
			st.Close()
			if err != nil {
				b.Fatal(err)
			}
			if res.Report.Counts.Readable != benchTiles {
				b.Fatalf("%d readable tiles, want %d: %+v", res.Report.Counts.Readable, benchTiles, res.Report.Problems[:min(3, len(res.Report.Problems))])
			}
			req1, bytes1 := r.served(b)
			ours = side{benchTiles / elapsed.Seconds(), float64(req1-req0) / benchTiles, float64(bytes1-bytes0) / benchTiles}
			if got := res.Report.IO.Requests; got != req1-req0 {
				b.Errorf("report.json counts %d requests, nginx served %d", got, req1-req0)
			}
			if ours.requestsPerTile > 1.05 {
				b.Errorf("%.3f requests per tile, listings included; the goal is at most 1.05", ours.requestsPerTile)
			}
		}
		ours.report(b)
	})

	b.Run("gdal-vsicurl-8", func(b *testing.B) {
		godal.RegisterAll()
		for b.Loop() {
			req0, bytes0 := r.served(b)
			start := time.Now()
			var next atomic.Int64
			var wg sync.WaitGroup
			var failed atomic.Int64
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(len(r.tileURL)) {
							return
						}
						if !openLikeTheOldScanner(r.tileURL[i]) {
							failed.Add(1)
						}
					}
				}()
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

	if ours.tilesPerSec > 0 && theirs.tilesPerSec > 0 {
		if ratio := ours.tilesPerSec / theirs.tilesPerSec; ratio < 10 {
			b.Errorf("pcrs-indexer is %.1fx the baseline's tiles/s; the goal is at least 10x", ratio)
		}
		fmt.Printf("remote scan, %d tiles, nginx + %v latency: pcrs-indexer %.0f tiles/s, %.3f requests/tile, %.0f bytes/tile; GDAL /vsicurl/ x8 %.0f tiles/s, %.3f requests/tile, %.0f bytes/tile; speed ratio %.1fx\n",
			benchTiles, benchLatency, ours.tilesPerSec, ours.requestsPerTile, ours.bytesPerTile,
			theirs.tilesPerSec, theirs.requestsPerTile, theirs.bytesPerTile, ours.tilesPerSec/theirs.tilesPerSec)
	}
}

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
