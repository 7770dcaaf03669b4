package indexer_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/ftp"
	"github.com/openpcrs/pcrs-indexer/storage/httpdir"
	"github.com/openpcrs/pcrs-indexer/storage/s3"
	"github.com/openpcrs/pcrs-indexer/storage/sftp"
	"github.com/openpcrs/pcrs-indexer/storage/storagetest"
	"github.com/openpcrs/pcrs-indexer/tilegen"
)

// requestTree is 6 tiles (JPEG 2000 and GeoTIFF, larger than a block) in
// 2 folders, each with the siblings deliveries carry: world files and
// .aux.xml.
func requestTree(t *testing.T) (map[string][]byte, int) {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{}
	for i := range 6 {
		ext := ".jp2"
		tile := tilegen.Tile{Driver: "JP2OpenJPEG", EPSG: 2154, Width: 2000, Pixel: 0.1, X: 700000 + float64(i)*200, Y: 6600200, Creation: []string{"QUALITY=50"}}
		if i%2 == 1 {
			ext = ".tif"
			tile = tilegen.Tile{EPSG: 2154, Width: 2000, Pixel: 0.1, X: 700000 + float64(i)*200, Y: 6600200, Creation: []string{"COMPRESS=JPEG", "PHOTOMETRIC=YCBCR", "TILED=YES"}}
		}
		key := fmt.Sprintf("zone-%d/t%d%s", i%2, i, ext)
		if err := tile.Write(filepath.Join(dir, key)); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, key))
		if err != nil {
			t.Fatal(err)
		}
		files[key] = raw
		world := "0.1\n0\n0\n-0.1\n700000.05\n6600199.95\n"
		files[strings.TrimSuffix(key, ext)+map[string]string{".jp2": ".j2w", ".tif": ".tfw"}[ext]] = []byte(world)
		files[key+".aux.xml"] = []byte("<PAMDataset></PAMDataset>\n")
	}
	return files, 6
}

// TestOneRequestPerTile: on every backend, a tile whose header fits in the
// first block costs exactly one read — no HEAD, no stat, no probe of a
// sibling the listing did not show — plus one read of its .aux.xml, which
// GDAL reads and which may override the tile's georeferencing (world files
// are never read: the tiles place themselves). Listing requests are the
// only other cost.
func TestOneRequestPerTile(t *testing.T) {
	files, tiles := requestTree(t)
	tests := []struct {
		name     string
		listings int64
		open     func(t *testing.T) (storage.Storage, func() int64)
	}{
		{"nginx", 3, func(t *testing.T) (storage.Storage, func() int64) {
			root := t.TempDir()
			servertest.WriteTree(t, root, files, storagetest.ModTime)
			srv := servertest.Nginx(t, root, false)
			u, _ := url.Parse(srv.URL)
			st, err := httpdir.New(u, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			return st, func() int64 { return settledCount(t, srv) }
		}},
		// Their listings round sizes: each tile's size comes with its
		// first read (Content-Range), never from a HEAD.
		{"apache", 3, func(t *testing.T) (storage.Storage, func() int64) {
			root := t.TempDir()
			servertest.WriteTree(t, root, files, storagetest.ModTime)
			servertest.OpenUp(t, root)
			srv := servertest.Apache(t, root)
			u, _ := url.Parse(srv.URL)
			st, err := httpdir.New(u, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			return st, func() int64 { return settledCount(t, srv) }
		}},
		{"lighttpd", 3, func(t *testing.T) (storage.Storage, func() int64) {
			root := t.TempDir()
			servertest.WriteTree(t, root, files, storagetest.ModTime)
			srv := servertest.Lighttpd(t, root)
			u, _ := url.Parse(srv.URL)
			st, err := httpdir.New(u, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			// lighttpd flushes its access log when it pleases: the
			// requests are counted as they leave the backend only.
			return st, nil
		}},
		{"versitygw", 1, func(t *testing.T) (storage.Storage, func() int64) {
			srv := servertest.VersityGW(t, "pcrs")
			cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(srv.Access, srv.Secret, "")}
			client := awss3.NewFromConfig(cfg, func(o *awss3.Options) { o.BaseEndpoint = aws.String(srv.Endpoint); o.UsePathStyle = true })
			for k, v := range files {
				if _, err := client.PutObject(context.Background(), &awss3.PutObjectInput{Bucket: aws.String("pcrs"), Key: aws.String(k), Body: bytes.NewReader(v)}); err != nil {
					t.Fatal(err)
				}
			}
			st, err := s3.New(cfg, "pcrs", "", srv.Endpoint, true)
			if err != nil {
				t.Fatal(err)
			}
			return st, nil
		}},
		{"sshd", 3, func(t *testing.T) (storage.Storage, func() int64) {
			srv := servertest.Sshd(t)
			root := t.TempDir()
			servertest.WriteTree(t, root, files, storagetest.ModTime)
			u := &url.URL{Scheme: "sftp", User: url.User("root"), Host: srv.Addr, Path: root}
			st, err := sftp.Open(context.Background(), u, storage.Options{SFTPKey: srv.ClientKey, SFTPKnownHosts: srv.KnownHosts})
			if err != nil {
				t.Fatal(err)
			}
			return st, nil
		}},
		{"vsftpd", 3, func(t *testing.T) (storage.Storage, func() int64) {
			u := servertest.VsftpdTree(t, files, storagetest.ModTime)
			st, err := ftp.Open(context.Background(), u, storage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return st, nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, served := tt.open(t)
			defer st.Close()
			before := int64(0)
			if served != nil {
				before = served()
			}
			res, err := indexer.Scan(context.Background(), indexer.Config{Storage: st, Location: tt.name, Name: "x"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Report.Counts.Readable != tiles {
				t.Fatalf("%d readable, want %d: %+v", res.Report.Counts.Readable, tiles, problemsOf(t, res))
			}
			for _, tile := range tilesOf(t, res) {
				if want := int64(len(files[tile.Object.Key])); tile.Object.Size != want {
					t.Errorf("%s: size %d, want %d", tile.Object.Key, tile.Object.Size, want)
				}
			}
			want := tt.listings + 2*int64(tiles)
			if got := res.Report.IO.Requests; got != want {
				t.Errorf("report.json counts %d requests, want %d listings + %d tile reads + %d .aux.xml reads", got, tt.listings, tiles, tiles)
			}
			if served != nil {
				if got := served() - before; got != want {
					t.Errorf("the server saw %d requests, want %d", got, want)
				}
			}
		})
	}
}

// settledCount counts the requests a server logged so far. A server logs
// a request just after answering it, so the count is taken once a
// sentinel request made now shows in the log, and the sentinels are left
// out of it.
func settledCount(t *testing.T, srv servertest.HTTPServer) int64 {
	t.Helper()
	sentinelSeq++
	mark := fmt.Sprintf("__sentinel_%d", sentinelSeq)
	resp, err := http.Get(srv.URL + mark)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for countLines(t, srv.AccessLog, mark) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the server never logged %s", mark)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return countLines(t, srv.AccessLog, "") - countLines(t, srv.AccessLog, "__sentinel_")
}

var sentinelSeq int

func countLines(t *testing.T, file, contains string) int64 {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), contains) {
			n++
		}
	}
	return n
}
