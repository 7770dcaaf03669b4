// Package progress draws a progress bar on a terminal.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Bar is a one-line progress bar, redrawn at most every 100 ms.
type Bar struct {
	W     io.Writer
	Label string

	mu       sync.Mutex
	total    int
	done     int
	start    time.Time
	lastDraw time.Time
}

// Found adds n units to the work: the total grows while the storage is
// still being listed.
func (b *Bar) Found(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.start.IsZero() {
		b.start = time.Now()
	}
	b.total += n
	b.draw(b.total == n)
}

// Advance records n more units done.
func (b *Bar) Advance(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.start.IsZero() {
		b.start = time.Now()
	}
	b.done += n
	b.draw(false)
}

// Finish draws the final state and ends the line.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draw(true)
	fmt.Fprintln(b.W)
}

func (b *Bar) draw(force bool) {
	now := time.Now()
	if !force && now.Sub(b.lastDraw) < 100*time.Millisecond {
		return
	}
	b.lastDraw = now
	const width = 30
	frac := 1.0
	if b.total > 0 {
		frac = float64(b.done) / float64(b.total)
	}
	filled := int(frac * width)
	elapsed := now.Sub(b.start).Seconds()
	rate, eta := 0.0, ""
	if elapsed > 0 && b.done > 0 {
		rate = float64(b.done) / elapsed
		if b.done < b.total {
			eta = fmt.Sprintf(" ETA %s", (time.Duration(float64(b.total-b.done)/rate) * time.Second).Round(time.Second))
		}
	}
	fmt.Fprintf(b.W, "\r%s [%s%s] %d/%d %.0f/s%s\033[K", b.Label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), b.done, b.total, rate, eta)
}
