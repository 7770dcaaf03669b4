package hostile_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/internal/hostile"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/httpdir"
)

// deadline is far beyond what any walk here needs: a walk that ends by it
// rather than by its own bound fails the test through its error.
const deadline = 20 * time.Second

func open(t testing.TB, raw string) storage.Storage {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	s, err := httpdir.New(u, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// walk walks s with w under the deadline, and checks the walk ended by
// itself, not by the deadline.
func walk(t *testing.T, s storage.Storage, w storage.Walker) ([]storage.Object, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	var got []storage.Object
	err := w.Walk(ctx, s, func(o storage.Object) error { got = append(got, o); return nil })
	if ctx.Err() != nil {
		t.Fatalf("the walk ran into the test's deadline: %v", err)
	}
	return got, err
}

func TestWideFolderFailsOnePage(t *testing.T) {
	srv := hostile.WideFolder(t, 1_000_000)
	_, err := walk(t, open(t, srv.URL), storage.Walker{})
	if !errors.Is(err, storage.ErrTooLarge) || !strings.Contains(err.Error(), srv.URL) {
		t.Errorf("err = %v, want ErrTooLarge naming %s", err, srv.URL)
	}
	if n := srv.Requests(); n != 1 {
		t.Errorf("%d requests, want the one page", n)
	}
}

func TestWideFolderBoundedByFolders(t *testing.T) {
	srv := hostile.WideFolder(t, 5_000)
	_, err := walk(t, open(t, srv.URL), storage.Walker{MaxFolders: 1_000})
	if !errors.Is(err, storage.ErrTooLarge) || !strings.Contains(err.Error(), "1000 folders") {
		t.Errorf("err = %v, want ErrTooLarge at 1000 folders", err)
	}
	if n := srv.Requests(); n != 1 {
		t.Errorf("%d requests, want only the root: its folders are too many to start", n)
	}
}

func TestEndlessFanOutBounded(t *testing.T) {
	srv := hostile.FanOut(t)
	const maxFolders = 300
	got, err := walk(t, open(t, srv.URL), storage.Walker{MaxFolders: maxFolders, NeedSize: func(storage.Object) bool { return false }})
	if !errors.Is(err, storage.ErrTooLarge) {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
	if n := srv.Requests(); n > maxFolders {
		t.Errorf("%d requests, want at most %d", n, maxFolders)
	}
	if len(got) > maxFolders {
		t.Errorf("%d objects from at most %d folders of one tile", len(got), maxFolders)
	}
}

func TestEndlessDepthBounded(t *testing.T) {
	srv := hostile.Deep(t)
	_, err := walk(t, open(t, srv.URL), storage.Walker{})
	if !errors.Is(err, storage.ErrTooLarge) || !strings.Contains(err.Error(), "folders deep") {
		t.Errorf("err = %v, want ErrTooLarge for depth", err)
	}
	if n := srv.Requests(); n > storage.MaxDepth+1 {
		t.Errorf("%d requests, want at most %d", n, storage.MaxDepth+1)
	}
}

func TestMaintenancePageIsNoListing(t *testing.T) {
	srv := hostile.Maintenance(t)
	got, err := walk(t, open(t, srv.URL), storage.Walker{})
	if !errors.Is(err, storage.ErrNotAListing) || !strings.Contains(err.Error(), srv.URL) {
		t.Errorf("err = %v, want ErrNotAListing naming %s", err, srv.URL)
	}
	if len(got) != 0 {
		t.Errorf("listed %v", got)
	}
}

func TestGzipListings(t *testing.T) {
	for _, asFile := range []bool{false, true} {
		t.Run(fmt.Sprintf("asFile=%v", asFile), func(t *testing.T) {
			srv := hostile.Gzip(t, asFile)
			got, err := walk(t, open(t, srv.URL), storage.Walker{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(hostile.Files) {
				t.Errorf("listed %+v, want %d objects", got, len(hostile.Files))
			}
			for _, o := range got {
				if content, ok := hostile.Files[o.Key]; !ok || o.Err != nil || o.Size != int64(len(content)) {
					t.Errorf("listed %+v, want one of %v with its size", o, hostile.Files)
				}
			}
		})
	}
}

func TestSlowBodyEndsByRequestTimeout(t *testing.T) {
	srv := hostile.Slow(t, 100*time.Millisecond)
	s := storage.Compose(open(t, srv.URL), storage.ComposeConfig{Retry: storage.RetryPolicy{Attempts: 2, Base: time.Millisecond, Timeout: 500 * time.Millisecond}})
	_, err := walk(t, s, storage.Walker{})
	if !errors.Is(err, storage.ErrRequestTimeout) {
		t.Errorf("err = %v, want ErrRequestTimeout", err)
	}
	if n := srv.Requests(); n != 2 {
		t.Errorf("%d requests, want 2 attempts", n)
	}
}

func TestLyingLengths(t *testing.T) {
	full := hostile.LyingBodyLen()
	for _, tt := range []struct {
		name            string
		announced, sent int
	}{
		{"cut mid-way", full, full / 2},
		{"length too short", full / 2, full},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := hostile.Lying(t, tt.announced, tt.sent)
			got, err := walk(t, open(t, srv.URL), storage.Walker{})
			if !errors.Is(err, storage.ErrTransient) || !strings.Contains(err.Error(), srv.URL) {
				t.Errorf("err = %v, want a transient error naming %s", err, srv.URL)
			}
			if len(got) != 0 {
				t.Errorf("listed %d objects of a page cut short", len(got))
			}
		})
	}
}

func TestFailedHeadIsOneObjectsProblem(t *testing.T) {
	files := map[string]int{"a.tif": 10, "b.pdf": 20, "c.tif": 30}
	srv := hostile.RoundedSizes(t, files, "b.pdf")
	got, err := walk(t, open(t, srv.URL), storage.Walker{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(files) {
		t.Fatalf("listed %+v, want %d objects", got, len(files))
	}
	for _, o := range got {
		switch {
		case o.Key == "b.pdf" && !errors.Is(o.Err, storage.ErrNotFound):
			t.Errorf("%+v: want ErrNotFound from its HEAD", o)
		case o.Key != "b.pdf" && (o.Err != nil || o.Size != int64(files[o.Key])):
			t.Errorf("%+v: want size %d", o, files[o.Key])
		}
	}
}

func TestOnlyNeededObjectsSized(t *testing.T) {
	files := map[string]int{"a.tif": 10, "b.pdf": 20, "c.tif": 30}
	srv := hostile.RoundedSizes(t, files, "")
	got, err := walk(t, open(t, srv.URL), storage.Walker{NeedSize: func(o storage.Object) bool { return strings.HasSuffix(o.Key, ".tif") }})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range got {
		if want := int64(files[o.Key]); o.Key == "b.pdf" && o.Size != storage.SizeUnknown || o.Key != "b.pdf" && o.Size != want {
			t.Errorf("%+v: sized wrongly", o)
		}
	}
	if n := srv.Heads(); n != 2 {
		t.Errorf("%d HEADs, want 2 (the tiles only)", n)
	}
}

// childURL, set in a child's environment, makes the test binary walk that
// URL with the default bounds and exit: its peak memory is then the
// walk's alone, read whole from the kernel rather than sampled.
const childURL = "HOSTILE_CHILD_WALK_URL"

// childDeadline is generous: the child is built with the race detector
// under `make test`, and what it checks is memory, not speed.
const childDeadline = 2 * time.Minute

func TestMain(m *testing.M) {
	if u := os.Getenv(childURL); u != "" {
		os.Exit(childWalk(u))
	}
	os.Exit(m.Run())
}

func childWalk(raw string) int {
	u, err := url.Parse(raw)
	if err != nil {
		fmt.Println(err)
		return 2
	}
	s, err := httpdir.New(u, "", nil)
	if err != nil {
		fmt.Println(err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), childDeadline)
	defer cancel()
	err = storage.Walk(ctx, s, func(storage.Object) error { return nil })
	fmt.Printf("too-large=%v deadline=%v err=%v\n", errors.Is(err, storage.ErrTooLarge), ctx.Err() != nil, err)
	return 0
}

// TestMemoryBounded walks the widest pages in a child process and reads
// its peak resident memory.
func TestMemoryBounded(t *testing.T) {
	const limit = 512 << 20
	for _, n := range []int{1_000_000, 150_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			srv := hostile.WideFolder(t, n)
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childURL+"="+srv.URL)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if !strings.HasPrefix(string(out), "too-large=true deadline=false") {
				t.Errorf("child walk: %s, want ErrTooLarge before the deadline", out)
			}
			rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
			t.Logf("%d folder links: peak RSS %d MiB, %s", n, rss>>20, out)
			if rss >= limit {
				t.Errorf("peak RSS %d MiB, want < %d MiB", rss>>20, limit>>20)
			}
		})
	}
}
