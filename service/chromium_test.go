package service

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// browser drives a headless Chromium through the DevTools protocol over
// --remote-debugging-pipe (file descriptors 3 and 4, messages ended by a
// NUL byte): no port, no WebSocket, nothing but the page's own requests
// on the network. Tests use it where a page must be moved after loading;
// what they assert is read from the page's data attributes.
type browser struct {
	t       testing.TB
	cmd     *exec.Cmd
	in      *os.File // Chromium reads commands here (its fd 3)
	session string

	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpMessage
	waiters map[string][]chan struct{} // event method → who waits for it
	// problems are the page's uncaught exceptions, console errors and
	// browser log errors (a CSP refusal is one): a test fails on them.
	problems []string
	closed   chan struct{}
}

type cdpMessage struct {
	ID     int             `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
	SessionID string `json:"sessionId"`
}

// chromium finds Debian's chromium and checks the map's assets are
// embedded.
func chromium(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: run `make test` (it installs Debian's chromium)")
	}
	for _, a := range mapAssets {
		if _, err := fs.Stat(webFS, a); err != nil {
			t.Fatal("the map's scripts are not embedded: run `make web` before the tests")
		}
	}
	return bin
}

// chromeFlags keep Chromium off the network but for the page's requests.
func chromeFlags(t testing.TB) []string {
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
		"--disable-default-apps", "--disable-extensions", "--mute-audio", "--window-size=1280,800",
		"--user-data-dir=" + t.TempDir()}
}

// newBrowser starts Chromium with one blank page attached.
func newBrowser(t testing.TB) *browser {
	t.Helper()
	bin := chromium(t)
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append(chromeFlags(t), "--remote-debugging-pipe", "about:blank")...)
	cmd.ExtraFiles = []*os.File{cmdR, outW} // fds 3 and 4
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmdR.Close()
	outW.Close()
	b := &browser{t: t, cmd: cmd, in: cmdW, pending: map[int]chan cdpMessage{}, waiters: map[string][]chan struct{}{}, closed: make(chan struct{})}
	go b.read(bufio.NewReaderSize(outR, 1<<20))
	t.Cleanup(func() {
		b.in.Close() // Chromium exits when its pipe closes
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		outR.Close()
	})
	var target struct{ TargetID string }
	b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct{ SessionID string }
	b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	b.session = attached.SessionID
	for _, domain := range []string{"Page.enable", "Runtime.enable", "Log.enable"} {
		b.call(b.session, domain, nil, nil)
	}
	return b
}

func (b *browser) read(r *bufio.Reader) {
	defer close(b.closed)
	for {
		raw, err := r.ReadBytes(0)
		if err != nil {
			return
		}
		var m cdpMessage
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch := b.pending[m.ID]; ch != nil {
				delete(b.pending, m.ID)
				ch <- m
			}
		} else {
			b.event(m)
		}
		b.mu.Unlock()
	}
}

// event records a page problem or wakes who waits for it; b.mu is held.
func (b *browser) event(m cdpMessage) {
	switch m.Method {
	case "Runtime.exceptionThrown":
		var p struct {
			ExceptionDetails struct {
				Text      string
				Exception struct{ Description string }
			}
		}
		_ = json.Unmarshal(m.Params, &p)
		b.problems = append(b.problems, "exception: "+p.ExceptionDetails.Text+" "+p.ExceptionDetails.Exception.Description)
	case "Runtime.consoleAPICalled":
		var p struct {
			Type string
			Args []struct {
				Value       any
				Description string
			}
		}
		_ = json.Unmarshal(m.Params, &p)
		if p.Type == "error" {
			b.problems = append(b.problems, fmt.Sprintf("console.error: %v", p.Args))
		}
	case "Log.entryAdded":
		var p struct {
			Entry struct{ Level, Source, Text, URL string }
		}
		_ = json.Unmarshal(m.Params, &p)
		if p.Entry.Level == "error" && p.Entry.Source != "network" {
			b.problems = append(b.problems, "log: "+p.Entry.Source+": "+p.Entry.Text)
		}
	}
	for _, ch := range b.waiters[m.Method] {
		close(ch)
	}
	delete(b.waiters, m.Method)
}

// call sends one command and waits for its answer (at most a minute).
func (b *browser) call(session, method string, params any, result any) {
	b.t.Helper()
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMessage, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	raw, _ := json.Marshal(msg)
	if _, err := b.in.Write(append(raw, 0)); err != nil {
		b.t.Fatalf("%s: %v", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			b.t.Fatalf("%s: %s", method, m.Error.Message)
		}
		if result != nil {
			if err := json.Unmarshal(m.Result, result); err != nil {
				b.t.Fatalf("%s: %v", method, err)
			}
		}
	case <-b.closed:
		b.t.Fatalf("%s: chromium went away", method)
	case <-time.After(time.Minute):
		b.t.Fatalf("%s: no answer in a minute", method)
	}
}

// waitFor returns a channel closed at the next event named method.
func (b *browser) waitFor(method string) <-chan struct{} {
	ch := make(chan struct{})
	b.mu.Lock()
	b.waiters[method] = append(b.waiters[method], ch)
	b.mu.Unlock()
	return ch
}

// open loads url in the page and waits for its load event.
func (b *browser) open(url string) {
	b.t.Helper()
	loaded := b.waitFor("Page.loadEventFired")
	b.call(b.session, "Page.navigate", map[string]any{"url": url}, nil)
	select {
	case <-loaded:
	case <-time.After(time.Minute):
		b.t.Fatalf("%s: not loaded in a minute", url)
	}
}

// eval evaluates a JavaScript expression in the page, awaiting it when it
// is a promise, and decodes its value into result.
func (b *browser) eval(expr string, result any) {
	b.t.Helper()
	var r struct {
		Result struct {
			Value json.RawMessage
		}
		ExceptionDetails *struct {
			Text      string
			Exception struct{ Description string }
		}
	}
	b.call(b.session, "Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, &r)
	if r.ExceptionDetails != nil {
		b.t.Fatalf("%s: %s %s", expr, r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	if result != nil {
		if err := json.Unmarshal(r.Result.Value, result); err != nil {
			b.t.Fatalf("%s: %v (%s)", expr, err, r.Result.Value)
		}
	}
}

// dataset waits until the page's <body> data attributes satisfy cond (a
// JavaScript expression over d, the dataset), watching them change: no
// polling, no sleep. It returns the dataset then.
func (b *browser) dataset(cond string) map[string]string {
	b.t.Helper()
	expr := `new Promise((resolve) => {
		const ok = () => { const d = document.body ? document.body.dataset : {}; return (` + cond + `) ? Object.assign({}, d) : null; };
		const now = ok();
		if (now) return resolve(now);
		const mo = new MutationObserver(() => { const v = ok(); if (v) { mo.disconnect(); resolve(v); } });
		mo.observe(document.documentElement, { attributes: true, subtree: true, childList: true });
	})`
	var d map[string]string
	b.eval(expr, &d)
	return d
}

// pageProblems are the page's exceptions and errors so far.
func (b *browser) pageProblems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}
