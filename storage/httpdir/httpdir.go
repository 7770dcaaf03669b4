// Package httpdir is the storage backend for web servers' directory
// listings (Apache, nginx — HTML or JSON —, lighttpd, IIS, Go, python and
// other "Index of" pages), crawled recursively below the given URL.
package httpdir

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/openpcrs/pcrs-indexer/internal/netguard"
	"github.com/openpcrs/pcrs-indexer/storage"
)

// maxListing bounds one listing page, decompressed: a folder of 100,000
// tiles is about 13 MB of nginx HTML. A longer page fails the listing
// rather than being cut, which would list part of the folder as all of it.
const maxListing = 16 << 20

// Storage crawls the listings below root.
type Storage struct {
	root     *url.URL // no userinfo; path ends with "/"
	user     string
	password string
	client   *http.Client
}

// Open is the registry's opener for http:// and https:// locations.
func Open(_ context.Context, u *url.URL, opts storage.Options) (storage.Storage, error) {
	return New(u, opts.Password, newTransport(opts.Guard))
}

// New crawls below u. The user name comes from u, the password from
// password (never from the URL, which gets logged). A nil transport gets
// one tuned for many small ranged requests.
func New(u *url.URL, password string, transport http.RoundTripper) (*Storage, error) {
	root := *u
	if root.Host == "" {
		return nil, fmt.Errorf("URL without host")
	}
	var user string
	if root.User != nil {
		user = root.User.Username()
		if p, ok := root.User.Password(); ok && password == "" {
			password = p
		}
		root.User = nil
	}
	root.RawQuery, root.Fragment = "", ""
	if !strings.HasSuffix(root.Path, "/") {
		root.Path += "/"
	}
	root.RawPath = ""
	if transport == nil {
		transport = newTransport(nil)
	}
	s := &Storage{root: &root, user: user, password: password}
	s.client = &http.Client{Transport: transport, CheckRedirect: s.checkRedirect}
	return s, nil
}

// newTransport is tuned for many small ranged requests. Every connection,
// redirects' included, is dialled through guard (nil: no guard); a guarded
// transport ignores HTTP_PROXY, since a proxy would connect on our behalf
// where the guard cannot see.
func newTransport(guard *netguard.Guard) *http.Transport {
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			return guard.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128, // one kept-alive connection per worker
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 15 * time.Second,
		// Ranged reads must come back as the bytes asked for.
		DisableCompression: true,
	}
	if guard != nil {
		t.Proxy = nil
	}
	return t
}

// errRedirect marks a redirect refused: final, no retry would help.
var errRedirect = errors.New("redirect refused")

// checkRedirect follows redirects (a folder without its trailing slash)
// only within the storage. The path is judged as the server will read it:
// decoded ("%2e%2e" is "..") and with its dot segments resolved, since a
// server that resolves them serves "/tiles/%2e%2e/other/" from "/other/".
func (s *Storage) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("too many redirects")
	}
	if req.URL.Host != s.root.Host {
		return fmt.Errorf("%w: %s leaves the storage %s: another host", errRedirect, req.URL.Redacted(), s.root.Redacted())
	}
	resolved := cleanPath(req.URL.Path)
	if !strings.HasPrefix(resolved, cleanPath(s.root.Path)) {
		return fmt.Errorf("%w: %s leaves the storage %s: its path resolves to %s", errRedirect, req.URL.Redacted(), s.root.Redacted(), resolved)
	}
	if hasDotSegment(req.URL.Path) {
		// Inside, but the links of a page there resolve elsewhere than
		// below it (see directChild): the folder would read as empty.
		return fmt.Errorf("%w: %s: its path holds dot segments (it resolves to %s)", errRedirect, req.URL.Redacted(), resolved)
	}
	if s.password != "" {
		req.SetBasicAuth(s.user, s.password)
	}
	return nil
}

func hasDotSegment(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// cleanPath is p with its dot segments resolved and empty ones dropped,
// still naming a folder when p does: "/a/b/" and "/a/b/." stay
// "/a/b/", where path.Clean gives "/a/b", a file's name.
func cleanPath(p string) string {
	c := path.Clean("/" + p)
	last := p[strings.LastIndexByte(p, '/')+1:]
	if c != "/" && (last == "" || last == "." || last == "..") {
		c += "/"
	}
	return c
}

func (s *Storage) request(ctx context.Context, method string, u *url.URL) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if s.password != "" || s.user != "" {
		req.SetBasicAuth(s.user, s.password)
	}
	req.Header.Set("User-Agent", "pcrs-indexer")
	return req, nil
}

// keyURL is the URL of a key (a decoded path relative to the root).
func (s *Storage) keyURL(key string) *url.URL {
	u := *s.root
	u.Path = s.root.Path + key
	return &u
}

func (s *Storage) do(req *http.Request) (*http.Response, error) {
	resp, err := s.client.Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return nil, req.Context().Err()
		}
		if errors.Is(err, errRedirect) {
			return nil, err
		}
		return nil, storage.Transient(err)
	}
	return resp, nil
}

// statusErr maps a failed status to the storage's reasons.
func statusErr(req *http.Request, resp *http.Response) error {
	err := fmt.Errorf("%s %s: %s", req.Method, req.URL.Redacted(), resp.Status)
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return fmt.Errorf("%w: %v", storage.ErrNotFound, err)
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
		return storage.Transient(err)
	}
	return err
}

// List reads one folder's listing page; cursor is the folder's key ("" for
// the root, else ending with "/").
func (s *Storage) List(ctx context.Context, cursor string) (storage.Page, error) {
	req, err := s.request(ctx, http.MethodGet, s.keyURL(cursor))
	if err != nil {
		return storage.Page{}, err
	}
	resp, err := s.do(req)
	if err != nil {
		return storage.Page{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return storage.Page{}, statusErr(req, resp)
	}
	// Links resolve against where the page really is (after redirects).
	base := *resp.Request.URL
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	base.RawPath = ""
	entries, err := readListing(ctx, &base, resp)
	if err != nil {
		return storage.Page{}, fmt.Errorf("listing %s: %w", base.Redacted(), err)
	}
	var page storage.Page
	for _, e := range entries {
		key := strings.TrimPrefix(e.Path, s.root.Path)
		if e.Dir {
			page.Dirs = append(page.Dirs, key)
			continue
		}
		page.Objects = append(page.Objects, storage.Object{Key: key, Size: e.Size, ModTime: e.ModTime})
	}
	return page, nil
}

// readListing reads and parses a listing page, refusing what does not
// read as one whole listing.
func readListing(ctx context.Context, base *url.URL, resp *http.Response) ([]entry, error) {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if !listingTypes[mt] {
		return nil, fmt.Errorf("%w: content type %q", storage.ErrNotAListing, mt)
	}
	body, err := readBody(resp)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); mt == "application/json" || len(trimmed) > 0 && trimmed[0] == '[' {
		return parseJSON(base, body)
	}
	if cutShort(body) {
		return nil, storage.Transient(errors.New("the page ends before </html>: cut short"))
	}
	entries, listing, err := parseHTML(base, string(body))
	switch {
	case err != nil:
		return nil, err
	case !listing:
		return nil, fmt.Errorf("%w: no link to a file, a folder or the parent folder, no index title", storage.ErrNotAListing)
	}
	return entries, nil
}

// listingTypes are the content types a listing comes as; "" is a server
// that does not say. Gzip types are listings served compressed as files.
var listingTypes = map[string]bool{
	"": true, "text/html": true, "application/xhtml+xml": true, "text/plain": true,
	"application/json": true, "application/gzip": true, "application/x-gzip": true,
}

// readBody reads a listing body up to maxListing bytes, decompressed: some
// servers gzip it whether asked or not, some serve a listing.gz as is.
func readBody(resp *http.Response) ([]byte, error) {
	br := bufio.NewReader(resp.Body)
	var r io.Reader = br
	switch enc := strings.ToLower(resp.Header.Get("Content-Encoding")); enc {
	case "", "identity":
		if magic, _ := br.Peek(2); !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
			break
		}
		fallthrough
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, storage.Transient(fmt.Errorf("gzip listing: %w", err))
		}
		r = zr
	default:
		return nil, fmt.Errorf("%w: content encoding %q", storage.ErrNotAListing, enc)
	}
	body, err := io.ReadAll(io.LimitReader(r, maxListing+1))
	if err != nil {
		return nil, storage.Transient(fmt.Errorf("reading the page: %w", err))
	}
	if len(body) > maxListing {
		return nil, fmt.Errorf("%w: page longer than %d bytes", storage.ErrTooLarge, maxListing)
	}
	return body, nil
}

// cutShort says whether an HTML page opened <html> and never closed it: a
// server that lied about its length or dropped the connection. Go's
// FileServer writes neither, so only an opened page must be closed.
func cutShort(body []byte) bool {
	head := body[:min(len(body), 4096)]
	tail := body[max(0, len(body)-4096):]
	return bytes.Contains(bytes.ToLower(head), []byte("<html")) && !bytes.Contains(bytes.ToLower(tail), []byte("</html"))
}

// Stat asks the server with HEAD, or with a one-byte ranged GET where HEAD
// is refused or gives no length (Apache, for an empty file).
func (s *Storage) Stat(ctx context.Context, key string) (storage.Object, error) {
	resp, err := s.head(ctx, key, http.MethodHead)
	if err != nil {
		return storage.Object{}, err
	}
	size := resp.ContentLength
	if resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented || resp.StatusCode == http.StatusOK && size < 0 {
		if resp, err = s.head(ctx, key, http.MethodGet); err != nil {
			return storage.Object{}, err
		}
		switch resp.StatusCode {
		case http.StatusPartialContent, http.StatusRequestedRangeNotSatisfiable:
			size = totalFromContentRange(resp.Header.Get("Content-Range"))
			resp.StatusCode = http.StatusOK
		case http.StatusOK:
			size = resp.ContentLength
		}
	}
	if resp.StatusCode != http.StatusOK {
		return storage.Object{}, statusErr(resp.Request, resp)
	}
	if size < 0 {
		return storage.Object{}, fmt.Errorf("%s: the server gives no size", key)
	}
	o := storage.Object{Key: key, Size: size, ETag: strings.Trim(resp.Header.Get("ETag"), `"`)}
	o.ModTime, _ = http.ParseTime(resp.Header.Get("Last-Modified"))
	return o, nil
}

// head sends a HEAD, or a GET of the first byte, and closes the body.
func (s *Storage) head(ctx context.Context, key, method string) (*http.Response, error) {
	req, err := s.request(ctx, method, s.keyURL(key))
	if err != nil {
		return nil, err
	}
	if method == http.MethodGet {
		req.Header.Set("Range", "bytes=0-0")
	}
	resp, err := s.do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return resp, nil
}

func totalFromContentRange(v string) int64 {
	_, total, ok := strings.Cut(v, "/")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(total, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// ReadAt is one ranged GET. A server that ignores Range answers with the
// whole object: the bytes before off are skipped, the ones after p are
// never read (the connection is dropped instead of drained).
func (s *Storage) ReadAt(ctx context.Context, key string, p []byte, off int64) (int, error) {
	n, _, err := s.ReadAtSize(ctx, key, p, off)
	return n, err
}

// ReadAtSize is ReadAt, with the object's total size from the answer's
// Content-Range (or Content-Length, when the server ignored Range).
func (s *Storage) ReadAtSize(ctx context.Context, key string, p []byte, off int64) (int, int64, error) {
	if len(p) == 0 {
		return 0, storage.SizeUnknown, nil
	}
	req, err := s.request(ctx, http.MethodGet, s.keyURL(key))
	if err != nil {
		return 0, storage.SizeUnknown, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1))
	resp, err := s.do(req)
	if err != nil {
		return 0, storage.SizeUnknown, err
	}
	defer resp.Body.Close()
	var total int64
	switch resp.StatusCode {
	case http.StatusPartialContent:
		total = totalFromContentRange(resp.Header.Get("Content-Range"))
	case http.StatusOK:
		total = resp.ContentLength
	case http.StatusRequestedRangeNotSatisfiable:
		return 0, totalFromContentRange(resp.Header.Get("Content-Range")), io.EOF
	default:
		return 0, storage.SizeUnknown, statusErr(req, resp)
	}
	// Compressed bytes are not the object's bytes at off, nor is their
	// length its size.
	if enc := resp.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		return 0, storage.SizeUnknown, fmt.Errorf("reading %s: the server sends it %s-encoded", key, enc)
	}
	if resp.StatusCode == http.StatusOK {
		if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
			if err == io.EOF {
				return 0, total, io.EOF
			}
			return 0, total, storage.Transient(err)
		}
	}
	n, err := io.ReadFull(resp.Body, p)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		// Shorter than asked: either the object ends there or the
		// connection was cut. The announced length tells which.
		if total >= 0 && off+int64(n) < total {
			return n, total, storage.Transient(fmt.Errorf("reading %s: cut after %d bytes", key, n))
		}
		return n, total, io.EOF
	case err != nil:
		if ctx.Err() != nil {
			return n, total, ctx.Err()
		}
		return n, total, storage.Transient(err)
	}
	return n, total, nil
}

// Close drops idle connections.
func (s *Storage) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
