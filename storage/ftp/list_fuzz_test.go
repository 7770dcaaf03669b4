package ftp_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/ftp"
)

// FuzzList feeds a LIST (ls, DOS, hostedftp styles) or MLSD answer, as a
// hostile server would send it on the data connection, to Storage.List,
// and checks what the walk relies on: every folder is a direct child of
// the folder listed and a key the storage can address again (else the
// walk fails on it), every object is one too or carries ErrBadKey, sizes
// are exact or SizeUnknown, no more entries than lines, and a second
// listing is the same.
func FuzzList(f *testing.F) {
	list := newListServer(f, false)
	mlsd := newListServer(f, true)
	for _, l := range []string{
		// vsftpd, ProFTPD, Pure-FTPd (ls style).
		"drwxr-xr-x    2 0        0            4096 Jan 02 03:04 d\r\n-rw-r--r--    1 0        0               6 Jan 02  2024 a.tif\r\n",
		"-rw-r--r--   1 ftp      ftp       1048576 Nov 22 23:37 big.tif\r\nlrwxrwxrwx   1 ftp      ftp             7 Nov 22 23:37 link.tif -> big.tif\r\n",
		"drwxr-xr-x+  3 owner group 4096 Mar 15 2023 acl dir\r\n-r--------   0 user group     65222236 Feb 24 00:39 hosted.csv\r\n",
		"-rw-r--r-- 1 u g 5 Jan 1 2020 r\xe9seau.tif\r\n-rw-r--r-- 1 u g 5 Jan 1 2020 x\x00y.tif\r\n-rw-r--r-- 1 u g 5 Jan 1 2020 \xff\xfe\n",
		"-rw-r--r-- 1 u g 18446744073709551615 Jan 1 2020 max.tif\r\n-rw-r--r-- 1 u g 0x10 Jan 1 2020 hex.tif\r\n-rw-r--r-- 1 u g 99999999999999999999 Jan 1 2020 over.tif\r\n",
		"-rw-r--r-- 1 u g 5 Feb 30 99:99 bad-date.tif\r\n-rw-r--r-- 1 u g 5 Dec 31 9999 far.tif\r\n",
		"drwxr-xr-x 2 u g 0 Jan 1 2020 .\r\ndrwxr-xr-x 2 u g 0 Jan 1 2020 ..\r\ndrwxr-xr-x 2 u g 0 Jan 1 2020  lead space\r\n",
		"total 12\r\n\r\n \r\n-rw-r--r-- 1 u g 5 Jan 1 2020\r\n",
		"---------- 1 u g 5 Jan 1 2020 weird-type\r\ncrw-r--r-- 1 u g 5 Jan 1 2020 chardev\r\n",
		// Windows IIS (DOS style).
		"01-14-24  09:05AM       <DIR>          ligne 01\r\n01-14-24  09:05AM              2397687 AUDE.jp2\r\n2024-01-14  21:05              611 AUDE.j2w\r\n",
		"01-14-2024  09:05PM  18446744073709551615 max.jp2\r\n13-45-2024  99:99PM  1 bad.jp2\r\n",
		"",
		manyFiles(200),
		strings.Repeat("x", 70<<10) + "\r\n", // past bufio.Scanner's line bound
	} {
		f.Add(false, uint8(0), []byte(l))
	}
	for _, l := range []string{
		// ProFTPD, Pure-FTPd (MLSD).
		"modify=20240102030405;perm=flcdmpe;type=cdir;unique=803U1;UNIX.mode=0755; .\r\nmodify=20240102030405;perm=flcdmpe;type=pdir;unique=803U2; ..\r\ntype=dir;modify=20240102030405; d\r\ntype=file;size=6;modify=20240102030405; a.tif\r\n",
		"type=file;size=18446744073709551615;modify=20240102030405; max.tif\r\ntype=file;size=0b101;modify=20240102030405.123; bin.tif\r\n",
		"type=OS.unix=slink:/x;size=1; link\r\nType=File;Size=2;Modify=20240102030405; upper.tif\r\ntype=file;size=3;modify=99999999999999; bad-date.tif\r\n",
		"type=file;size=1; with space.tif\r\ntype=file;size=1;  two spaces.tif\r\ntype=file;size=1; r\xe9seau\r\n",
		"type=file;size=1;=x; noval\r\n;type=file; lead\r\ntype=file;size=1 nosemi\r\n",
		"",
	} {
		f.Add(true, uint8(1), []byte(l))
	}
	f.Fuzz(func(t *testing.T, useMLSD bool, c uint8, listing []byte) {
		srv := list
		if useMLSD {
			srv = mlsd
		}
		cursor := []string{"", "sub", "a/b c"}[int(c)%3]
		got := srv.list(t, cursor, listing)
		if got.err != nil {
			if len(got.page.Objects)+len(got.page.Dirs) > 0 {
				t.Errorf("a page %+v with the error %v", got.page, got.err)
			}
			if errors.Is(got.err, context.DeadlineExceeded) {
				t.Fatalf("the listing hung: %v", got.err)
			}
		} else {
			checkPage(t, cursor, got.page, listing)
		}
		again := srv.list(t, cursor, listing)
		if (got.err == nil) != (again.err == nil) || !reflect.DeepEqual(got.page, again.page) {
			t.Errorf("a second listing differs: %+v %v, then %+v %v", got.page, got.err, again.page, again.err)
		}
	})
}

func manyFiles(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "-rw-r--r-- 1 u g %d Jan 1 2020 f%03d.tif\r\n", i, i)
	}
	return b.String()
}

func checkPage(t *testing.T, cursor string, page storage.Page, listing []byte) {
	t.Helper()
	if lines := bytes.Count(listing, []byte("\n")) + 1; len(page.Objects)+len(page.Dirs) > lines {
		t.Errorf("%d entries out of %d lines", len(page.Objects)+len(page.Dirs), lines)
	}
	// bad says why key is not an entry of cursor the storage can list or
	// read again, or "".
	parent := cursor
	if parent == "" {
		parent = "."
	}
	bad := func(key string) string {
		switch {
		case key == "":
			return "empty key"
		case strings.HasSuffix(key, "/") || path.Dir(key) != parent:
			return fmt.Sprintf("not a direct child of %q", cursor)
		}
		if _, err := storage.JoinKey("/srv", key); err != nil {
			return err.Error()
		}
		return ""
	}
	for _, d := range page.Dirs {
		if why := bad(d); why != "" {
			t.Errorf("folder %q: %s", d, why)
		}
	}
	for _, o := range page.Objects {
		if why := bad(o.Key); why != "" && !errors.Is(o.Err, storage.ErrBadKey) {
			t.Errorf("object %q: %s, yet no ErrBadKey", o.Key, why)
		}
		// An object listed twice is no fault of List's: only a hostile
		// server repeats a name, and the scan keeps one verdict a key.
		if o.Size < storage.SizeUnknown {
			t.Errorf("object %q: size %d, neither exact nor SizeUnknown", o.Key, o.Size)
		}
	}
}

// listServer is an FTP server whose LIST and MLSD answer the listing of the
// call in flight, whatever the folder asked; mlsd says whether it
// advertises MLST (the client then lists with MLSD).
type listServer struct {
	st   storage.Storage
	data net.Listener

	mu      sync.Mutex
	listing []byte

	// sent has the bytes of the last listing the client took, once the
	// server is done writing it; a listing nobody waits for is dropped.
	sent chan int
}

// listed is one List's answer.
type listed struct {
	page storage.Page
	err  error
}

func newListServer(f testing.TB, mlsd bool) *listServer {
	ctrl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	data, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	s := &listServer{data: data, sent: make(chan int, 1)}
	go func() {
		for {
			c, err := ctrl.Accept()
			if err != nil {
				return
			}
			go s.serve(c, mlsd)
		}
	}()
	st, err := ftp.Open(context.Background(), &url.URL{Scheme: "ftp", Host: ctrl.Addr().String(), Path: "/"}, storage.Options{})
	if err != nil {
		f.Fatal(err)
	}
	s.st = st
	f.Cleanup(func() {
		st.Close()
		ctrl.Close()
		data.Close()
	})
	return s
}

func (s *listServer) list(t *testing.T, cursor string, listing []byte) listed {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listing = listing
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	page, err := s.st.List(ctx, cursor)
	return listed{page, err}
}

func (s *listServer) serve(c net.Conn, mlsd bool) {
	defer c.Close()
	r := bufio.NewReader(c)
	fmt.Fprint(c, "220 fuzz\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToUpper(cmd) {
		case "USER", "PASS":
			fmt.Fprint(c, "230 in\r\n")
		case "FEAT":
			if mlsd {
				fmt.Fprint(c, "211-Features:\r\n MLST type*;size*;modify*;\r\n211 End\r\n")
			} else {
				fmt.Fprint(c, "211 no features\r\n")
			}
		case "TYPE", "OPTS", "NOOP":
			fmt.Fprint(c, "200 ok\r\n")
		case "EPSV":
			fmt.Fprintf(c, "229 Entering Extended Passive Mode (|||%d|)\r\n", s.data.Addr().(*net.TCPAddr).Port)
		case "LIST", "MLSD":
			// Called with s.mu held by list.
			fmt.Fprint(c, "150 here it comes\r\n")
			s.data.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
			d, err := s.data.Accept()
			if err != nil {
				fmt.Fprint(c, "425 no data connection\r\n")
				continue
			}
			n, _ := d.Write(s.listing)
			d.Close()
			select {
			case s.sent <- n:
			default:
			}
			fmt.Fprint(c, "226 done\r\n")
		case "QUIT":
			fmt.Fprint(c, "221 bye\r\n")
			return
		default:
			fmt.Fprint(c, "502 not here\r\n")
		}
	}
}
