package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/internal/servertest"
	"github.com/openpcrs/pcrs-indexer/tilegen"
)

// oneTileStorage is a folder holding one readable tile.
func oneTileStorage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := (tilegen.Tile{EPSG: 2154}).Write(filepath.Join(dir, "a.tif")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFlagsAnywhereAndFromEnvironment(t *testing.T) {
	storageDir := oneTileStorage(t)
	out := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"scan", storageDir, "--out", out, "--name", "après"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("flags after SOURCE: exit %d\n%s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, indexer.DallesFile)); err != nil {
		t.Errorf("--out after SOURCE ignored: %v", err)
	}

	envOut := filepath.Join(t.TempDir(), "env-out")
	t.Setenv("PCRS_INDEXER_OUT", envOut)
	t.Setenv("PCRS_INDEXER_CONCURRENCY", "3")
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"scan", storageDir}, &stdout, &stderr); code != exitOK {
		t.Fatalf("flags from the environment: exit %d\n%s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(envOut, indexer.DallesFile)); err != nil {
		t.Errorf("PCRS_INDEXER_OUT ignored: %v", err)
	}
	// The command line wins over the environment.
	lineOut := filepath.Join(t.TempDir(), "line-out")
	if code := run([]string{"scan", "--out", lineOut, storageDir}, &stdout, &stderr); code != exitOK {
		t.Fatal(stderr.String())
	}
	if _, err := os.Stat(filepath.Join(lineOut, indexer.DallesFile)); err != nil {
		t.Errorf("--out did not win over PCRS_INDEXER_OUT: %v", err)
	}
	t.Setenv("PCRS_INDEXER_CONCURRENCY", "many")
	stderr.Reset()
	if code := run([]string{"scan", storageDir}, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "PCRS_INDEXER_CONCURRENCY") {
		t.Errorf("a bad environment value: exit %d, %q", code, stderr.String())
	}
}

func TestHelpOnStdout(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"scan", "--help"}, {"serve", "-h"}, {"sample", "--help"}} {
		var stdout, stderr bytes.Buffer
		dir := t.TempDir()
		wd, _ := os.Getwd()
		if err := os.Chdir(dir); err != nil {
			t.Fatal(err)
		}
		code := run(args, &stdout, &stderr)
		_ = os.Chdir(wd)
		if code != exitOK || stderr.Len() != 0 || !strings.Contains(strings.ToLower(stdout.String()), "usage") {
			t.Errorf("%v: exit %d, stdout %.80q, stderr %.80q", args, code, stdout.String(), stderr.String())
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%v created %s", args, entries[0].Name())
		}
	}
	// Bad usage: one line saying why, and where help is.
	var stdout, stderr bytes.Buffer
	if code := run([]string{"scan", "a", "b"}, &stdout, &stderr); code != exitUsage || strings.Count(stderr.String(), "\n") > 2 || !strings.Contains(stderr.String(), "2 arguments") {
		t.Errorf("two sources: exit %d, %q", code, stderr.String())
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"version"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if got := stdout.String(); !strings.HasPrefix(got, "pcrs-indexer ") || !strings.Contains(got, "GDAL 3.6.2") || !strings.Contains(got, "commit ") {
		t.Errorf("version says %q", got)
	}
}

// finalLine is the last line of stderr, decoded: the event every scan ends
// with.
func finalLine(t *testing.T, stderr string) map[string]any {
	t.Helper()
	var last string
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		last = sc.Text()
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(last), &ev); err != nil || ev["msg"] != "scan finished" {
		t.Fatalf("last stderr line %q is not the final event (%v)", last, err)
	}
	return ev
}

func TestFinalEvent(t *testing.T) {
	storageDir := oneTileStorage(t)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"scan", "--out", out, storageDir}, &stdout, &stderr); code != exitOK {
		t.Fatal(stderr.String())
	}
	ev := finalLine(t, stderr.String())
	counts, _ := ev["counts"].(map[string]any)
	if ev["outcome"] != "success" || counts["readable"] != 1.0 || counts["tiles"] != 1.0 {
		t.Errorf("final event %v", ev)
	}
	if _, ok := ev["retries"]; !ok {
		t.Errorf("final event without retries: %v", ev)
	}

	// An emptied storage: exit 1, outputs kept, the event says failed.
	if err := os.Remove(filepath.Join(storageDir, "a.tif")); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(out, indexer.DallesFile))
	stderr.Reset()
	if code := run([]string{"scan", "--out", out, storageDir}, &stdout, &stderr); code != exitFailed {
		t.Fatalf("emptied storage: exit %d, want 1\n%s", code, stderr.String())
	}
	after, _ := os.ReadFile(filepath.Join(out, indexer.DallesFile))
	if !bytes.Equal(before, after) || len(before) == 0 {
		t.Error("an emptied storage replaced dalles.geojson")
	}
	if ev := finalLine(t, stderr.String()); ev["outcome"] != "failed" || !strings.Contains(fmt.Sprint(ev["error"]), "no tile") {
		t.Errorf("final event %v", ev)
	}
}

func TestUnwritableOutFailsBeforeListing(t *testing.T) {
	storageDir := oneTileStorage(t)
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"scan", "--out", filepath.Join(file, "out"), storageDir}, &stdout, &stderr); code != exitFailed {
		t.Fatalf("exit %d", code)
	}
	if ev := finalLine(t, stderr.String()); ev["counts"] != nil || !strings.Contains(fmt.Sprint(ev["error"]), "output folder") {
		t.Errorf("the scan ran before the output was checked: %v", ev)
	}
}

func TestCatalogErrorsExitUsageInAStableOrder(t *testing.T) {
	cat := t.TempDir() // empty: every export missing
	storageDir := oneTileStorage(t)
	var first string
	for i := range 5 {
		var stdout, stderr bytes.Buffer
		code := run([]string{"scan", "--out", t.TempDir(), "--catalog", cat, "--projet", "p", "--livrable", "l", storageDir}, &stdout, &stderr)
		if code != exitUsage {
			t.Fatalf("exit %d, want %d: %s", code, exitUsage, stderr.String())
		}
		line, _, _ := strings.Cut(stderr.String(), "\n")
		if i == 0 {
			first = line
		} else if line != first {
			t.Fatalf("first error changed between runs: %q then %q", first, line)
		}
	}
	if !strings.Contains(first, "livrables.csv") {
		t.Errorf("the first missing export in name order is livrables.csv: %q", first)
	}
}

// Two jobs writing into one node_exporter textfile folder both appear in
// node_exporter's output, with no collision.
func TestTwoJobsShareATextfileFolder(t *testing.T) {
	exporter, err := exec.LookPath("prometheus-node-exporter")
	if err != nil {
		t.Fatal("prometheus-node-exporter is missing: run make test (it installs it)")
	}
	folder := t.TempDir()
	a, b := oneTileStorage(t), oneTileStorage(t)
	for _, src := range []string{a, b} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"scan", "--out", t.TempDir(), "--metrics-file", folder, src}, &stdout, &stderr); code != exitOK {
			t.Fatal(stderr.String())
		}
	}
	// A reserved port: one merely probed free could go to another test
	// process's listener before the child binds it.
	addr := fmt.Sprintf("127.0.0.1:%d", servertest.FreePort(t))
	cmd := exec.Command(exporter, "--web.listen-address="+addr, "--collector.disable-defaults", "--collector.textfile", "--collector.textfile.directory="+folder)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait() // the logs are complete, and no longer written, after it
		}
	}
	t.Cleanup(stop)
	body := scrape(t, "http://"+addr+"/metrics")
	stop()
	for _, src := range []string{a, b} {
		want := `pcrs_indexer_scans_total{outcome="success",storage="` + indexer.StorageID(src) + `"} 1`
		if !strings.Contains(body, want) {
			t.Errorf("node_exporter lacks %s", want)
		}
	}
	if !strings.Contains(body, "node_textfile_scrape_error 0") {
		t.Errorf("textfile collector error:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "collected before") {
		t.Errorf("series collide:\n%s", logs.String())
	}
}

// scrape GETs url once node_exporter listens (it starts in milliseconds;
// the connection is retried until a deadline, not slept on).
func scrape(t *testing.T, url string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			return string(raw)
		}
		if time.Now().After(deadline) {
			t.Fatalf("node_exporter never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDamagedState: a garbage --state file fails the scan (exit 1) with a
// message naming the file, before anything is published; `serve
// --reset-state` moves a damaged store aside and serves.
func TestDamagedState(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(bad, bytes.Repeat([]byte("not a bbolt file "), 1024), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"scan", "--state", bad, "--out", out, oneTileStorage(t)}, &stdout, &stderr); code != exitFailed {
		t.Fatalf("exit %d, want %d: %s", code, exitFailed, stderr.String())
	}
	if !strings.Contains(stderr.String(), bad) || !strings.Contains(stderr.String(), "state file damaged") {
		t.Errorf("the error does not name the damaged file:\n%s", stderr.String())
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("outputs written beside a damaged state: %v", entries)
	}

	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "pcrs-indexer.db"), bytes.Repeat([]byte("garbage "), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "PCRS_INDEXER_TEST_ARGS="+strings.Join([]string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--reset-state"}, "\x1f"))
	logs, err := child.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	var seen []string
	sc := bufio.NewScanner(logs)
	for sc.Scan() && !strings.Contains(sc.Text(), `"msg":"serving"`) {
		seen = append(seen, sc.Text())
	}
	if aside, _ := filepath.Glob(filepath.Join(data, "pcrs-indexer.db.damaged-*")); len(aside) != 1 {
		t.Fatalf("the damaged store was not moved aside (%v); logs:\n%s", aside, strings.Join(seen, "\n"))
	}
	if err := child.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
	}
	if err := child.Wait(); err != nil {
		t.Errorf("serve after --reset-state: %v", err)
	}
}

// TestMemoryLimit: --memory-limit (or its variable) gives the runtime its
// soft limit and the log says which; auto leaves GOMEMLIMIT to the
// runtime; a size without its unit is refused before any work.
func TestMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	storageDir := oneTileStorage(t)
	for _, c := range []struct {
		args   []string
		env    map[string]string
		want   int64
		source string
	}{
		{[]string{"--memory-limit", "300MiB"}, nil, 300 << 20, "flag"},
		{nil, map[string]string{"PCRS_INDEXER_MEMORY_LIMIT": "1.5GiB"}, 3 << 29, "flag"},
		{nil, map[string]string{"GOMEMLIMIT": "123MiB"}, 0, "GOMEMLIMIT"},
	} {
		debug.SetMemoryLimit(before)
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		var stdout, stderr bytes.Buffer
		args := append([]string{"scan", "--out", filepath.Join(t.TempDir(), "out"), storageDir}, c.args...)
		if code := run(args, &stdout, &stderr); code != exitOK {
			t.Fatalf("%v: exit %d\n%s", args, code, stderr.String())
		}
		wantLimit := c.want
		if wantLimit == 0 {
			wantLimit = before
		}
		if got := debug.SetMemoryLimit(-1); got != wantLimit {
			t.Errorf("%v %v: the runtime's limit is %d, want %d", c.args, c.env, got, wantLimit)
		}
		if want := fmt.Sprintf(`"msg":"memory limit","bytes":%d,"source":"%s"`, c.want, c.source); !strings.Contains(stderr.String(), want) {
			t.Errorf("%v %v: the log does not say %s:\n%s", c.args, c.env, want, stderr.String())
		}
		for k := range c.env {
			os.Unsetenv(k)
		}
	}
	// off lifts a limit the runtime had (from GOMEMLIMIT at its start).
	debug.SetMemoryLimit(100 << 20)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"scan", "--out", filepath.Join(t.TempDir(), "out"), "--memory-limit", "off", storageDir}, &stdout, &stderr); code != exitOK {
		t.Fatalf("--memory-limit off: exit %d\n%s", code, stderr.String())
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("--memory-limit off left the runtime's limit at %d", got)
	}
	stderr.Reset()
	for _, args := range [][]string{
		{"scan", "--memory-limit", "512", storageDir},
		{"batch", "--memory-limit", "512", "--out", t.TempDir(), "manifest.csv"},
		{"serve", "--memory-limit", "512", "--data", t.TempDir()},
	} {
		stderr.Reset()
		if code := run(args, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "--memory-limit") || !strings.Contains(stderr.String(), "512MiB") {
			t.Errorf("%v: exit %d, %q", args, code, stderr.String())
		}
	}
}
