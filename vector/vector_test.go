package vector

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

func TestParseFormats(t *testing.T) {
	got, err := ParseFormats([]string{"fgb", "GPKG,fgb", "geojson"})
	if err != nil || len(got) != 3 || got[0] != FlatGeobuf || got[1] != GeoPackage || got[2] != GeoJSON {
		t.Errorf("%v %v", got, err)
	}
	if _, err := ParseFormats([]string{"shp"}); err == nil {
		t.Error("shp accepted")
	}
}

// writeTiles writes n tile-like features (200 m boxes in lon/lat, the
// dalles properties' shape) as a GeoJSON FeatureCollection.
func writeTiles(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(`{"type":"FeatureCollection","features":[`)
	for i := range n {
		if i > 0 {
			w.WriteByte(',')
		}
		x, y := -4.5+float64(i%3000)*0.0027, 42.3+float64(i/3000)*0.0018
		fmt.Fprintf(w, "\n"+`{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[%.7f,%.7f],[%.7f,%.7f],[%.7f,%.7f],[%.7f,%.7f],[%.7f,%.7f]]]},"properties":{"nomImage":"dalle_%d.jp2","idPCRS":null,"resolution":5,"typeImage":"image/jp2","tailleFichier":%d,"tailleImage":"4000x4000","compression":"LOSSY","epsg":"EPSG:2154","bandes":"Red(Byte)/Green(Byte)/Blue(Byte)","open":true,"chemin":"d/dalle_%d.jp2","stockage":"s3://b/p","location":"/vsis3/b/p/d/dalle_%d.jp2"}}`,
			x, y, x+0.0027, y, x+0.0027, y+0.0018, x, y+0.0018, x, y, i, 5_000_000+i, i, i)
	}
	w.WriteString("\n]}\n")
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func TestMain(m *testing.M) {
	// The benchmark's child: convert one file, so that its peak RSS is the
	// conversion's alone.
	if src := os.Getenv("PCRS_VECTOR_CHILD_SRC"); src != "" {
		if err := Write(os.Getenv("PCRS_VECTOR_CHILD_DST"), FlatGeobuf, Layer{Source: src, Name: "dalles"}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestWriteFlatGeobuf(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "d.geojson"), filepath.Join(dir, "d.fgb")
	if err := writeTiles(src, 1000); err != nil {
		t.Fatal(err)
	}
	if err := Write(dst, FlatGeobuf, Layer{Source: src, Name: "dalles"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Size() < 1000*100 {
		t.Fatalf("%v %v", fi, err)
	}
	if err := Write(filepath.Join(dir, "x.fgb"), FlatGeobuf, Layer{src, "a"}, Layer{src, "b"}); err == nil {
		t.Error("two layers in one FlatGeobuf accepted")
	}
}

// BenchmarkFlatGeobufMemory converts 100,000 and 1,000,000 tile features to
// FlatGeobuf in a child process and reports its peak RSS: flat, not growing
// with the features.
func BenchmarkFlatGeobufMemory(b *testing.B) {
	peaks := map[int]float64{}
	defer func() {
		if small, big := peaks[100_000], peaks[1_000_000]; small > 0 && big > 0 {
			fmt.Printf("flatgeobuf memory: 100k features %.0f MiB, 1M features %.0f MiB, ratio %.2f\n", small, big, big/small)
			if big > 1.3*small {
				b.Errorf("writing 1M features peaked at %.0f MiB, %.2f times 100k's: memory grows with the features", big, big/small)
			}
		}
	}()
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("features=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			src := filepath.Join(dir, "d.geojson")
			if err := writeTiles(src, n); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			var peak int64
			for range b.N {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "PCRS_VECTOR_CHILD_SRC="+src, "PCRS_VECTOR_CHILD_DST="+filepath.Join(dir, "d.fgb"))
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%v: %s", err, out)
				}
				peak = max(peak, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
			}
			b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
			peaks[n] = float64(peak) / 1024
		})
	}
}
