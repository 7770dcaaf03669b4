package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"github.com/openpcrs/pcrs-indexer/internal/netguard"
)

// Op names a kind of storage request, for counters and metrics.
type Op string

const (
	OpList Op = "list"
	OpRead Op = "read"
	OpStat Op = "stat"
)

// Observer hears about every request that reaches the backend.
type Observer interface {
	ObserveRequest(op Op, bytes int64, err error, elapsed time.Duration)
}

// Counter is an Observer that totals requests and bytes, and, as a
// RetryHook (ObserveRetry), the requests tried again.
type Counter struct {
	requests, bytes, retries atomic.Int64
}

// ObserveRetry counts one retry; it is a RetryHook.
func (c *Counter) ObserveRetry(Op, error) { c.retries.Add(1) }

// Retries is the number of requests tried again so far.
func (c *Counter) Retries() int64 { return c.retries.Load() }

func (c *Counter) ObserveRequest(_ Op, bytes int64, _ error, _ time.Duration) {
	c.requests.Add(1)
	c.bytes.Add(bytes)
}

// Requests is the number of requests seen so far.
func (c *Counter) Requests() int64 { return c.requests.Load() }

// Bytes is the number of bytes read so far.
func (c *Counter) Bytes() int64 { return c.bytes.Load() }

// Observed reports every request of s to the observers. Wrap it innermost
// so that each retry counts as the request it is.
func Observed(s Storage, obs ...Observer) Storage {
	return observed{Storage: s, obs: obs}
}

type observed struct {
	Storage
	obs []Observer
}

func (d observed) Unwrap() Storage { return d.Storage }

func (o observed) List(ctx context.Context, cursor string) (Page, error) {
	start := time.Now()
	p, err := o.Storage.List(ctx, cursor)
	for _, ob := range o.obs {
		ob.ObserveRequest(OpList, 0, err, time.Since(start))
	}
	return p, err
}

func (o observed) ReadAt(ctx context.Context, key string, p []byte, off int64) (int, error) {
	start := time.Now()
	n, err := o.Storage.ReadAt(ctx, key, p, off)
	for _, ob := range o.obs {
		ob.ObserveRequest(OpRead, int64(n), err, time.Since(start))
	}
	return n, err
}

func (o observed) ReadAtSize(ctx context.Context, key string, p []byte, off int64) (int, int64, error) {
	start := time.Now()
	n, size, err := ReadAtSize(ctx, o.Storage, key, p, off)
	for _, ob := range o.obs {
		ob.ObserveRequest(OpRead, int64(n), err, time.Since(start))
	}
	return n, size, err
}

func (o observed) Stat(ctx context.Context, key string) (Object, error) {
	start := time.Now()
	obj, err := o.Storage.Stat(ctx, key)
	for _, ob := range o.obs {
		ob.ObserveRequest(OpStat, 0, err, time.Since(start))
	}
	return obj, err
}

// RetryPolicy bounds retries of transient failures.
type RetryPolicy struct {
	Attempts int           // total tries, first one included
	Base     time.Duration // first backoff; doubles each retry
	Max      time.Duration // cap on one backoff
	// Timeout bounds one request; 0 means no per-request timeout.
	Timeout time.Duration
}

// DefaultRetry suits remote storages: 5 tries over about 10 s.
var DefaultRetry = RetryPolicy{Attempts: 5, Base: 200 * time.Millisecond, Max: 5 * time.Second, Timeout: 60 * time.Second}

// Retrying retries requests that fail with a transient error, with
// exponential backoff and full jitter so that workers hitting the same
// failing server do not retry in lockstep.
func Retrying(s Storage, p RetryPolicy) Storage {
	return retryingWith(s, p, nil)
}

// RetryHook hears about every request about to be tried again, with the
// failure that caused it: a storage absorbing many retries is unhealthy
// even when the scan succeeds.
type RetryHook func(op Op, err error)

func retryingWith(s Storage, p RetryPolicy, hook RetryHook) Storage {
	if p.Attempts < 1 {
		p.Attempts = 1
	}
	if hook == nil {
		hook = func(Op, error) {}
	}
	return retrying{Storage: s, p: p, hook: hook}
}

type retrying struct {
	Storage
	p    RetryPolicy
	hook RetryHook
}

func (d retrying) Unwrap() Storage { return d.Storage }

func (r retrying) do(ctx context.Context, op Op, fn func(context.Context) error) error {
	var err error
	for attempt := 0; attempt < r.p.Attempts; attempt++ {
		if attempt > 0 {
			r.hook(op, err)
			backoff := min(r.p.Base<<(attempt-1), r.p.Max)
			wait := time.Duration(rand.Int64N(int64(backoff) + 1))
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(err, ctx.Err())
			case <-t.C:
			}
		}
		err = r.once(ctx, fn)
		if err == nil || !Retryable(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

func (r retrying) once(ctx context.Context, fn func(context.Context) error) error {
	if r.p.Timeout <= 0 {
		return fn(ctx)
	}
	rctx, cancel := context.WithTimeoutCause(ctx, r.p.Timeout, ErrRequestTimeout)
	defer cancel()
	err := fn(rctx)
	if err != nil && ctx.Err() == nil && context.Cause(rctx) == ErrRequestTimeout {
		return Transient(fmt.Errorf("%w after %v: %w", ErrRequestTimeout, r.p.Timeout, err))
	}
	return err
}

// ErrRequestTimeout marks one request that outlived RetryPolicy.Timeout (a
// server trickling its answer), as opposed to the caller's deadline.
var ErrRequestTimeout = errors.New("storage request timed out")

func (r retrying) List(ctx context.Context, cursor string) (Page, error) {
	var page Page
	err := r.do(ctx, OpList, func(ctx context.Context) error {
		var err error
		page, err = r.Storage.List(ctx, cursor)
		return err
	})
	return page, err
}

func (r retrying) ReadAt(ctx context.Context, key string, p []byte, off int64) (int, error) {
	n, _, err := r.ReadAtSize(ctx, key, p, off)
	return n, err
}

func (r retrying) ReadAtSize(ctx context.Context, key string, p []byte, off int64) (int, int64, error) {
	var n int
	size := int64(SizeUnknown)
	err := r.do(ctx, OpRead, func(ctx context.Context) error {
		var err error
		n, size, err = ReadAtSize(ctx, r.Storage, key, p, off)
		if err == io.EOF {
			return nil // an answer, not a failure
		}
		return err
	})
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, size, err
}

func (r retrying) Stat(ctx context.Context, key string) (Object, error) {
	var obj Object
	err := r.do(ctx, OpStat, func(ctx context.Context) error {
		var err error
		obj, err = r.Storage.Stat(ctx, key)
		return err
	})
	return obj, err
}

// Retryable says whether err is worth another try: marked transient by the
// backend, or a network error the backend did not classify.
func Retryable(err error) bool {
	if errors.Is(err, ErrTransient) {
		return true
	}
	// A refused address stays refused: retrying a rebinding name would
	// only give it more chances.
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrNotFound) || errors.Is(err, netguard.ErrRefused) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// Limited lets at most n requests reach s at once, whatever the number of
// workers: servers of small authorities do not take 64 parallel GETs well.
func Limited(s Storage, n int) Storage {
	if n < 1 {
		n = 1
	}
	return limited{Storage: s, sem: make(chan struct{}, n)}
}

type limited struct {
	Storage
	sem chan struct{}
}

func (d limited) Unwrap() Storage { return d.Storage }

func (l limited) acquire(ctx context.Context) error {
	select {
	case l.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l limited) List(ctx context.Context, cursor string) (Page, error) {
	if err := l.acquire(ctx); err != nil {
		return Page{}, err
	}
	defer func() { <-l.sem }()
	return l.Storage.List(ctx, cursor)
}

func (l limited) ReadAt(ctx context.Context, key string, p []byte, off int64) (int, error) {
	if err := l.acquire(ctx); err != nil {
		return 0, err
	}
	defer func() { <-l.sem }()
	return l.Storage.ReadAt(ctx, key, p, off)
}

func (l limited) ReadAtSize(ctx context.Context, key string, p []byte, off int64) (int, int64, error) {
	if err := l.acquire(ctx); err != nil {
		return 0, SizeUnknown, err
	}
	defer func() { <-l.sem }()
	return ReadAtSize(ctx, l.Storage, key, p, off)
}

func (l limited) Stat(ctx context.Context, key string) (Object, error) {
	if err := l.acquire(ctx); err != nil {
		return Object{}, err
	}
	defer func() { <-l.sem }()
	return l.Storage.Stat(ctx, key)
}

// ComposeConfig says how Compose wraps a storage.
type ComposeConfig struct {
	// Observers hear every request that reaches the backend, each retry
	// included.
	Observers []Observer
	// Retry is the retry policy; a zero Attempts means DefaultRetry.
	Retry RetryPolicy
	// Concurrency bounds the requests in flight; 0 means no bound.
	Concurrency int
	// OnRetry, when set, hears about every retry.
	OnRetry RetryHook
}

// Compose wraps s once with every decorator, in the only order that counts
// right: observed innermost (each retry is a request), retried, then
// limited outermost (a request waiting to retry keeps its slot, so the
// bound holds against a failing server).
func Compose(s Storage, c ComposeConfig) Storage {
	if len(c.Observers) > 0 {
		s = Observed(s, c.Observers...)
	}
	if c.Retry.Attempts == 0 {
		c.Retry = DefaultRetry
	}
	s = retryingWith(s, c.Retry, c.OnRetry)
	if c.Concurrency > 0 {
		s = Limited(s, c.Concurrency)
	}
	return s
}
