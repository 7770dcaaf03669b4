package corpus

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cliBinary is the pcrs-indexer built once for this package's tests.
var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
	cliDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if cliDir != "" {
		os.RemoveAll(cliDir)
	}
	os.Exit(code)
}

// buildCLI builds ./cmd/pcrs-indexer from the module root.
func buildCLI(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			cliErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		if cliDir, cliErr = os.MkdirTemp("", "corpus-cli-"); cliErr != nil {
			return
		}
		cliPath = filepath.Join(cliDir, "pcrs-indexer")
		cmd := exec.Command("go", "build", "-o", cliPath, "./cmd/pcrs-indexer")
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("go build ./cmd/pcrs-indexer: %w\n%s", err, msg)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

// memoryCeiling bounds the child's address space, so that a header that
// makes the scan allocate without bound fails this test instead of
// exhausting the machine shared with other work.
const memoryCeilingKiB = 6 << 20

// scanCommand runs `pcrs-indexer scan --out out src` under the ceiling.
func scanCommand(ctx context.Context, bin, out, src string) *exec.Cmd {
	script := fmt.Sprintf(`ulimit -v %d && exec "$0" "$@"`, memoryCeilingKiB)
	return exec.CommandContext(ctx, "/bin/sh", "-c", script, bin, "scan", "--out", out, src)
}

type report struct {
	Counts struct {
		Tiles, Readable, Problems int
	} `json:"counts"`
	Problems []struct {
		Path, Reason, Detail string
	} `json:"problems"`
}

type featureCollection struct {
	Type     string `json:"type"`
	Features []struct {
		Geometry   json.RawMessage `json:"geometry"`
		Properties map[string]any  `json:"properties"`
	} `json:"features"`
}

func TestHostileScan(t *testing.T) {
	start := time.Now()
	bin := buildCLI(t)
	t.Logf("CLI built in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	root := t.TempDir()
	src := filepath.Join(root, "livrable")
	healthy, err := Healthy(filepath.Join(src, "dalles", "grille"), 14, 15)
	if err != nil {
		t.Fatal(err)
	}
	hostile, err := Hostile(filepath.Join(src, "dalles", "hostiles"))
	if err != nil {
		t.Fatal(err)
	}
	if len(healthy) < 200 || len(hostile) < 30 {
		t.Fatalf("%d healthy and %d hostile tiles: the corpus shrank", len(healthy), len(hostile))
	}
	t.Logf("%d healthy and %d hostile tiles written in %v", len(healthy), len(hostile), time.Since(start).Round(time.Millisecond))
	out := filepath.Join(root, "out")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := scanCommand(ctx, bin, out, src)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	checkStderr(t, stderr.String())
	if ctx.Err() != nil {
		t.Fatalf("the scan did not finish within 60 s (%v); stderr tail:\n%s", runErr, tail(stderr.String()))
	}
	if runErr != nil {
		t.Errorf("scan: %v (want exit 0); stdout:\n%s\nstderr tail:\n%s", runErr, stdout.String(), tail(stderr.String()))
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); !ok {
		t.Errorf("no resource usage for the child")
	} else if ru.Maxrss >= 512<<10 {
		t.Errorf("peak RSS of the scan %d MiB, want < 512 MiB", ru.Maxrss>>10)
	} else {
		t.Logf("peak RSS of the scan: %d MiB", ru.Maxrss>>10)
	}

	// A failed scan publishes nothing but leaves the report of its
	// attempt: its problems still tell which tiles went wrong.
	var rep report
	published := map[string]bool{}
	if runErr == nil {
		dalles := readFeatures(t, filepath.Join(out, "dalles.geojson"))
		readFeatures(t, filepath.Join(out, "livrables.geojson"))
		readJSON(t, filepath.Join(out, "report.json"), &rep)
		for _, f := range dalles.Features {
			if name, ok := f.Properties["nomImage"].(string); ok {
				published[name] = true
			}
		}
	} else {
		readJSON(t, filepath.Join(out, "report.failed.json"), &rep)
	}
	problems := map[string]string{}
	for _, p := range rep.Problems {
		problems[baseName(p.Path)] = p.Reason + ": " + p.Detail
	}
	if runErr != nil {
		// Outcomes below come from the failed attempt's report: a tile it
		// does not list counts as readable.
		for _, c := range append(healthy, hostile...) {
			if _, ok := problems[filepath.Base(c.Path)]; !ok {
				published[filepath.Base(c.Path)] = true
			}
		}
	}
	for _, c := range healthy {
		name := filepath.Base(c.Path)
		if !published[name] {
			t.Errorf("healthy tile %s missing from dalles.geojson (report: %q)", name, problems[name])
		}
	}
	for _, c := range hostile {
		name := filepath.Base(c.Path)
		got := Readable
		detail := ""
		switch p, isProblem := problems[name]; {
		case published[name] && isProblem:
			t.Errorf("%s [%s]: both published and reported as %s", c.Name, c.Note, p)
			continue
		case isProblem:
			got, detail, _ = strings.Cut(p, ": ")
		case !published[name]:
			t.Errorf("%s [%s]: neither in dalles.geojson nor in report.json's problems", c.Name, c.Note)
			continue
		}
		if !slices.Contains(c.Want, got) {
			t.Errorf("%s [%s]: got %s %q, want one of %v", c.Name, c.Note, got, detail, c.Want)
		}
	}
}

func baseName(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// checkStderr: every line a JSON log record, no panic, no raw GDAL output.
func checkStderr(t *testing.T, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "panic:") || strings.Contains(stderr, "goroutine ") {
		t.Errorf("the scan panicked:\n%s", tail(stderr))
	}
	bad := 0
	for _, line := range strings.Split(stderr, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if !json.Valid([]byte(line)) {
			if bad < 10 {
				t.Errorf("stderr line is not a JSON log record: %.300s", line)
			}
			bad++
		}
	}
	if bad > 10 {
		t.Errorf("… %d non-JSON stderr lines in all", bad)
	}
}

func tail(s string) string {
	const keep = 4000
	if len(s) > keep {
		return "…" + s[len(s)-keep:]
	}
	return s
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(raw) {
		t.Fatalf("%s is not valid JSON", path)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// readFeatures reads a FeatureCollection and checks every coordinate is
// finite.
func readFeatures(t *testing.T, path string) featureCollection {
	t.Helper()
	var fc featureCollection
	readJSON(t, path, &fc)
	if fc.Type != "FeatureCollection" {
		t.Errorf("%s: type %q", filepath.Base(path), fc.Type)
	}
	for i, f := range fc.Features {
		var g struct {
			Type        string `json:"type"`
			Coordinates any    `json:"coordinates"`
		}
		if err := json.Unmarshal(f.Geometry, &g); err != nil {
			t.Errorf("%s feature %d: geometry %v", filepath.Base(path), i, err)
			continue
		}
		if n, err := countFinite(g.Coordinates); err != nil || n == 0 {
			t.Errorf("%s feature %d (%v): %d coordinates, %v", filepath.Base(path), i, f.Properties["nomImage"], n, err)
		}
	}
	return fc
}

// countFinite counts the numbers of a coordinates array, failing on
// anything else (null, strings, huge values).
func countFinite(v any) (int, error) {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > 180 {
			return 0, fmt.Errorf("coordinate %v is not a finite longitude/latitude", x)
		}
		return 1, nil
	case []any:
		n := 0
		for _, e := range x {
			k, err := countFinite(e)
			if err != nil {
				return n, err
			}
			n += k
		}
		return n, nil
	}
	return 0, fmt.Errorf("unexpected %T in coordinates", v)
}

// TestHostileScanStops: a scan stuck on the costliest headers stops within
// 10 s of SIGTERM.
func TestHostileScanStops(t *testing.T) {
	bin := buildCLI(t)
	root := t.TempDir()
	hostile, err := Hostile(filepath.Join(root, "gen"))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "livrable")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	// Tiles set aside at once announce that reading has started; many
	// copies of the slowest tiles keep the scan busy after that.
	for i := 0; i < 8; i++ {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("000_empty_%d.jp2", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	slow := 0
	for _, c := range hostile {
		if !c.Slow {
			continue
		}
		slow++
		for i := 0; i < 300; i++ {
			link := filepath.Join(src, fmt.Sprintf("%s_%03d%s", c.Name, i, filepath.Ext(c.Path)))
			if err := os.Link(c.Path, link); err != nil {
				t.Fatal(err)
			}
		}
	}
	if slow < 5 {
		t.Fatalf("only %d slow hostile tiles", slow)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := scanCommand(ctx, bin, filepath.Join(root, "out"), src)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reading := make(chan struct{})
	var stderr lockedBuffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			stderr.WriteString(line + "\n")
			if strings.Contains(line, `"tile set aside"`) {
				once.Do(func() { close(reading) })
			}
		}
		_, _ = io.Copy(&stderr, pipe)
	}()
	select {
	case <-reading:
	case <-copied:
		_ = cmd.Wait()
		t.Fatalf("the scan ended before setting any tile aside; stderr:\n%s", tail(stderr.String()))
	case <-ctx.Done():
		<-copied
		_ = cmd.Wait()
		t.Fatalf("no tile set aside within 60 s; stderr:\n%s", tail(stderr.String()))
	}
	signalled := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v (the scan had already ended: the folder no longer keeps it busy)", err)
	}
	exited := make(chan error, 1)
	go func() {
		<-copied
		exited <- cmd.Wait()
	}()
	select {
	case err := <-exited:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Errorf("waiting for the scan: %v", err)
		}
		checkStderr(t, stderr.String())
		t.Logf("the scan stopped %v after SIGTERM (%v)", time.Since(signalled).Round(time.Millisecond), err)
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("the scan was still running 10 s after SIGTERM; stderr tail:\n%s", tail(stderr.String()))
	}
}

// lockedBuffer collects a child's output read by another goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
