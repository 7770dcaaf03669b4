package ftp

import (
	"context"
	"errors"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/storage"
)

// TestNoGreetingTimesOut: without a deadline on the context, the handshake
// timeout ends the wait for a greeting, as a transient failure.
func TestNoGreetingTimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			accepted <- c
		}
	}()
	defer func(d time.Duration) { handshakeTimeout = d }(handshakeTimeout)
	handshakeTimeout = 100 * time.Millisecond
	_, err = Open(context.Background(), &url.URL{Scheme: "ftp", Host: l.Addr().String(), Path: "/"}, storage.Options{})
	var ne net.Error
	if !errors.Is(err, storage.ErrTransient) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("err = %v, want a transient timeout", err)
	}
	(<-accepted).Close()
}
