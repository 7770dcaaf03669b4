// Package hostile serves, on 127.0.0.1, the directory listings a storage
// must survive: listings too wide, too deep or endless, pages that are no
// listing, compressed, trickled, cut or lying about their length. Each
// server counts the requests it answered so tests can bound them.
package hostile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Server is one hostile web server, closed when the test ends.
type Server struct {
	// URL is the listing to walk, ending with "/".
	URL      string
	requests atomic.Int64
	heads    atomic.Int64
}

// Requests is how many requests the server answered, HEADs included.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Heads is how many HEAD requests the server answered.
func (s *Server) Heads() int64 { return s.heads.Load() }

func serve(t testing.TB, h http.HandlerFunc) *Server {
	t.Helper()
	s := &Server{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if r.Method == http.MethodHead {
			s.heads.Add(1)
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/"
	return s
}

// page is an nginx-like listing of the given links.
func page(dir string, links ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<html><head><title>Index of %s</title></head><body><h1>Index of %s</h1><hr><pre><a href=\"../\">../</a>\n", dir, dir)
	for _, l := range links {
		fmt.Fprintf(&b, "<a href=\"%s\">%s</a>\n", l, l)
	}
	b.WriteString("</pre><hr></body></html>\n")
	return b.String()
}

func html(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/html")
	io.WriteString(w, body)
}

// WideFolder lists n folders at the root, written as they are generated so
// that the server holds none of the page; each folder is empty.
func WideFolder(t testing.TB, n int) *Server {
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			html(w, page(r.URL.Path))
			return
		}
		w.Header().Set("Content-Type", "text/html")
		bw := bufio.NewWriterSize(w, 64<<10)
		bw.WriteString("<html><head><title>Index of /</title></head><body><pre>\n")
		for i := range n {
			fmt.Fprintf(bw, "<a href=\"%d/\">%d/</a>\n", i, i)
		}
		bw.WriteString("</pre></body></html>\n")
		bw.Flush()
	})
}

// FanOut answers every folder with two sub-folders, a/ and b/, and one
// tile, forever.
func FanOut(t testing.TB) *Server {
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".tif") {
			w.Header().Set("Content-Length", "1")
			return
		}
		html(w, page(r.URL.Path, "a/", "b/", "x.tif"))
	})
}

// Deep answers every folder with one deeper folder, forever.
func Deep(t testing.TB) *Server {
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		html(w, page(r.URL.Path, "d/"))
	})
}

// Maintenance answers everything with a 200 page that is no listing.
func Maintenance(t testing.TB) *Server {
	return serve(t, func(w http.ResponseWriter, _ *http.Request) {
		html(w, "<html><head><title>Maintenance</title></head><body><h1>Back soon</h1><p>We are upgrading the service.</p></body></html>\n")
	})
}

// Files is the tree Gzip and Listed serve: a folder with two tiles.
var Files = map[string]string{"sub/a.tif": "aaaa", "sub/b.jp2": "bb"}

// Gzip serves Files with gzip-compressed listings, whatever the client
// asked: with Content-Encoding: gzip, or (asFile) as a .gz body with no
// encoding at all, the way a listing.gz served as a file comes.
func Gzip(t testing.TB, asFile bool) *Server {
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		if content, ok := Files[strings.TrimPrefix(r.URL.Path, "/")]; ok {
			io.WriteString(w, content)
			return
		}
		var body string
		switch r.URL.Path {
		case "/":
			body = page("/", "sub/")
		case "/sub/":
			body = page("/sub/", "a.tif", "b.jp2")
		default:
			http.NotFound(w, r)
			return
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		io.WriteString(zw, body)
		zw.Close()
		if asFile {
			w.Header().Set("Content-Type", "application/gzip")
		} else {
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Encoding", "gzip")
		}
		w.Write(buf.Bytes())
	})
}

// Slow trickles a listing one byte per interval, until the client leaves.
func Slow(t testing.TB, interval time.Duration) *Server {
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		body := page(r.URL.Path, strings.Repeat("x", 200)+".tif")
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := range len(body) {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
			w.Write([]byte{body[i]})
			w.(http.Flusher).Flush()
		}
	})
}

// Lying answers the root listing with a Content-Length of announced bytes
// and sends sent bytes of a real listing, then closes the connection:
// sent < announced is a body cut mid-way, sent > announced a length too
// short for its body.
func Lying(t testing.TB, announced, sent int) *Server {
	body := lyingBody()
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		conn, bw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\nContent-Length: %d\r\n\r\n", announced)
		bw.WriteString(body[:min(sent, len(body))])
		bw.Flush()
	})
}

// LyingBodyLen is the length of the listing Lying sends whole.
func LyingBodyLen() int { return len(lyingBody()) }

func lyingBody() string {
	var links []string
	for i := range 200 {
		links = append(links, fmt.Sprintf("tile_%03d.tif", i))
	}
	return page("/", links...)
}

// RoundedSizes lists files the way Apache does, sizes rounded ("1.0K"), so
// each needs a HEAD; the HEAD of missing answers 404.
func RoundedSizes(t testing.TB, files map[string]int, missing string) *Server {
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		if name == "" {
			var b strings.Builder
			b.WriteString("<html><head><title>Index of /</title></head><body><pre>")
			for f := range files {
				fmt.Fprintf(&b, "<a href=\"%s\">%s</a> 2024-01-02 03:04  1.0K\n", f, f)
			}
			b.WriteString("</pre></body></html>\n")
			html(w, b.String())
			return
		}
		size, ok := files[name]
		if !ok || name == missing {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		if r.Method == http.MethodGet {
			w.Write(make([]byte, size))
		}
	})
}
