// Package output is where batch and merge publish when their --out (or a
// merge's SHARD_OUT) is a remote prefix, s3://bucket/prefix: it is opened
// through the storage registry and written through storage.Writer, so a
// remote output takes the same locations, credentials and endpoints as a
// remote source. A local folder never comes here: it is written in place,
// as it always was.
package output

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/openpcrs/pcrs-indexer/indexer"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/backends"
)

// StateFile is the name, in a livrable's folder of a remote prefix, of its
// scan state (bbolt): pods come and go, so the state goes with the outputs.
const StateFile = "state.db"

// checkName is written then deleted to prove a prefix writable.
const checkName = ".pcrs-indexer-write-check"

// fetchChunk is the size of one ranged read when downloading.
const fetchChunk = 8 << 20

// minRate is the slowest upload accepted, in bytes per second: a request's
// deadline grows with its size at this rate.
const minRate = 1 << 20

// IsRemote says whether location names a remote prefix (it has a scheme)
// rather than a local folder.
func IsRemote(location string) bool { return strings.Contains(location, "://") }

// Prefix is a remote prefix that outputs are read from and written to.
type Prefix struct {
	location string          // redacted, ending with "/"
	st       storage.Storage // reads, retried
	w        storage.Writer
	retry    storage.RetryPolicy
	base     string // keys below the storage's root: "" or "<folder>/"
	close    func() error
}

// Open opens location for reading and writing. Unusable locations (a
// scheme without a writable backend, credentials in the text) give errors
// wrapping storage.ErrUnsupported: they are the caller's usage errors.
func Open(ctx context.Context, location string, opts storage.Options, retry storage.RetryPolicy) (*Prefix, error) {
	redacted := storage.Redact(location)
	if redacted != location {
		return nil, fmt.Errorf("%w: %s: give credentials by reference (environment, AWS configuration), never in the location", storage.ErrUnsupported, redacted)
	}
	st, err := backends.Registry().Open(ctx, location, opts)
	if err != nil {
		return nil, err
	}
	w, ok := st.(storage.Writer)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("%w: %s cannot be written to: outputs go to a local folder or an s3:// prefix", storage.ErrUnsupported, redacted)
	}
	return &Prefix{
		location: strings.TrimSuffix(redacted, "/") + "/",
		st:       storage.Compose(st, storage.ComposeConfig{Retry: retry}),
		w:        w, retry: retry, close: st.Close,
	}, nil
}

// Close releases the storage.
func (p *Prefix) Close() error { return p.close() }

// String is the prefix's redacted location.
func (p *Prefix) String() string { return p.location + p.base }

// Sub is the folder name below p, sharing its connection: close only the
// Prefix that Open returned.
func (p *Prefix) Sub(name string) *Prefix {
	sub := *p
	sub.base = p.base + name + "/"
	return &sub
}

// Check writes and deletes a small object, so that an unwritable prefix
// fails before a scan spends hours finding out, as a local --out does.
func (p *Prefix) Check(ctx context.Context) error {
	err := p.retried(ctx, 0, func(ctx context.Context) error {
		return p.w.Put(ctx, p.base+checkName, bytes.NewReader(nil), 0)
	})
	if err != nil {
		return fmt.Errorf("%s is not writable: %w", p, err)
	}
	return p.Delete(ctx, checkName)
}

// Delete removes name; an absent one is no error.
func (p *Prefix) Delete(ctx context.Context, name string) error {
	return p.retried(ctx, 0, func(ctx context.Context) error { return p.w.Delete(ctx, p.base+name) })
}

// Upload writes the local file src as name.
func (p *Prefix) Upload(ctx context.Context, name, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	return p.retried(ctx, info.Size(), func(ctx context.Context) error {
		// Each attempt sends the file from its start.
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		return p.w.Put(ctx, p.base+name, f, info.Size())
	})
}

// Fetch copies name into the local file dst. found is false, and dst not
// left behind, when there is no such object.
func (p *Prefix) Fetch(ctx context.Context, name, dst string) (found bool, err error) {
	f, err := os.Create(dst)
	if err != nil {
		return false, err
	}
	err = p.copyTo(ctx, p.base+name, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("reading %s%s: %w", p, name, err)
	}
	return true, nil
}

// copyTo streams key into w by ranged reads, each retried on its own.
func (p *Prefix) copyTo(ctx context.Context, key string, w io.Writer) error {
	buf := make([]byte, fetchChunk)
	for off := int64(0); ; {
		n, err := p.st.ReadAt(ctx, key, buf, off)
		if _, werr := w.Write(buf[:n]); werr != nil {
			return werr
		}
		off += int64(n)
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
}

// Names lists the objects below p, relative to it.
func (p *Prefix) Names(ctx context.Context) ([]string, error) {
	var names []string
	err := storage.Walk(ctx, p.st, func(o storage.Object) error {
		if o.Err != nil {
			return fmt.Errorf("listing %s: %s: %w", p, o.Key, o.Err)
		}
		if name, ok := strings.CutPrefix(o.Key, p.base); ok {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", p, err)
	}
	return names, nil
}

// File is a local file to upload as Name.
type File struct{ Name, Path string }

// Publish uploads the outputs in dir: first the files given (a livrable's
// state), then every output but report.json, then report.json, and last
// deletes the report of a failed attempt, as a local publish does. S3 has
// no rename, so no set of objects is ever replaced at once: report.json
// goes last so that a reader who sees the new one finds every other
// output already replaced, and a failure part-way leaves the previous
// report.json (hence the previous truth, as merge reads it) in place.
func (p *Prefix) Publish(ctx context.Context, dir string, first ...File) error {
	files, err := outputs(dir)
	if err != nil {
		return err
	}
	files = slices.Concat(first, files, []File{{indexer.ReportFile, filepath.Join(dir, indexer.ReportFile)}})
	for _, f := range files {
		if err := p.Upload(ctx, f.Name, f.Path); err != nil {
			return fmt.Errorf("uploading %s%s: %w", p, f.Name, err)
		}
	}
	if err := p.Delete(ctx, indexer.FailedReportFile); err != nil {
		return fmt.Errorf("deleting the stale %s%s: %w", p, indexer.FailedReportFile, err)
	}
	return nil
}

// outputs lists the files of dir to publish before report.json, sorted:
// neither the reports nor temporary (dot) files.
func outputs(dir string) ([]File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []File
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || name == indexer.ReportFile || name == indexer.FailedReportFile {
			continue
		}
		files = append(files, File{name, filepath.Join(dir, name)})
	}
	return files, nil
}

// retried runs one write request up to the policy's attempts while it
// fails transiently, with full-jitter backoff as the read decorator does.
func (p *Prefix) retried(ctx context.Context, size int64, fn func(context.Context) error) error {
	var err error
	for attempt := range max(p.retry.Attempts, 1) {
		if attempt > 0 {
			backoff := min(p.retry.Base<<(attempt-1), p.retry.Max)
			t := time.NewTimer(time.Duration(rand.Int64N(int64(backoff) + 1)))
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(err, ctx.Err())
			case <-t.C:
			}
		}
		err = p.once(ctx, size, fn)
		if err == nil || !storage.Retryable(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// once runs fn under its own deadline: the request timeout, plus the time
// to send size bytes at minRate, so that a large output on a slow link is
// not cut while a stalled upload still is.
func (p *Prefix) once(ctx context.Context, size int64, fn func(context.Context) error) error {
	if p.retry.Timeout <= 0 {
		return fn(ctx)
	}
	limit := p.retry.Timeout + time.Duration(size/minRate)*time.Second
	rctx, cancel := context.WithTimeoutCause(ctx, limit, storage.ErrRequestTimeout)
	defer cancel()
	err := fn(rctx)
	if err != nil && ctx.Err() == nil && context.Cause(rctx) == storage.ErrRequestTimeout {
		return storage.Transient(fmt.Errorf("%w after %v: %w", storage.ErrRequestTimeout, limit, err))
	}
	return err
}
