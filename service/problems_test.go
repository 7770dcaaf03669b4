package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
	"github.com/openpcrs/pcrs-indexer/internal/netguard"
	"github.com/openpcrs/pcrs-indexer/storage"
	"github.com/openpcrs/pcrs-indexer/storage/sftp"
)

// TestExplain: every failure is told by its type or sentinel, however
// deeply wrapped, with a code and a French sentence naming what to change.
func TestExplain(t *testing.T) {
	s := &Service{cfg: Config{S3Endpoint: "https://s3.example.fr"}}
	sftpRec := Record{URL: "sftp://owner@h.example.fr/pcrs/"}
	s3Rec := Record{URL: "s3://livraisons/pcrs/", Credentials: Credentials{S3AccessKey: "k", S3SecretKey: "s"}}
	wrap := func(err error) error {
		return fmt.Errorf("opening %s: %w", "x", storage.Transient(fmt.Errorf("listing: %w", err)))
	}
	tests := []struct {
		name string
		err  error
		rec  Record
		code string
		says []string
	}{
		{"auth", &sftp.AuthError{Addr: "h.example.fr:22", Methods: []string{"publickey"}, Err: errors.New("ssh: handshake failed: ssh: unexpected message type 51 (expected 60)")}, sftpRec,
			CodeSFTPAuthFailed, []string{"identifiant ou clé refusés par le serveur SFTP : vérifiez"}},
		{"host key changed", &sftp.HostKeyMismatchError{Addr: "h.example.fr:22", Type: "ssh-ed25519", Presented: "SHA256:new", Expected: []string{"SHA256:old"}}, sftpRec,
			CodeHostKeyMismatch, []string{"SHA256:new", "SHA256:old", "PATCH"}},
		{"host key unknown", &sftp.HostKeyUnknownError{Addr: "h.example.fr:22", Type: "ssh-ed25519", Fingerprint: "SHA256:abc"}, sftpRec,
			CodeHostKeyUnconfirmed, []string{"SHA256:abc", "hostKeyFingerprint"}},
		{"handshake", &sftp.HandshakeError{Addr: "h.example.fr:22", Err: errors.New("ssh: no common algorithm")}, sftpRec, CodeSSHHandshakeFailed, []string{"h.example.fr:22", "port"}},
		{"passphrase", fmt.Errorf("key: %w", sftp.ErrKeyPassphrase), sftpRec, CodeSFTPKeyPassphrase, []string{"credentials.sftpPassphrase"}},
		{"key", fmt.Errorf("key: %w", sftp.ErrKeyUnreadable), sftpRec, CodeSFTPKeyUnreadable, []string{"credentials.sftpPrivateKey"}},
		{"no credentials", fmt.Errorf("%w: give --sftp-key", sftp.ErrNoCredentials), sftpRec, CodeSFTPNoCredentials, []string{"credentials.password"}},
		{"access denied", &smithy.GenericAPIError{Code: "AccessDenied"}, s3Rec, CodeS3AccessDenied, []string{"« livraisons »", "https://s3.example.fr"}},
		{"no bucket", &smithy.GenericAPIError{Code: "NoSuchBucket"}, s3Rec, CodeS3NoSuchBucket, []string{"« livraisons »"}},
		{"access key", &smithy.GenericAPIError{Code: "InvalidAccessKeyId"}, s3Rec, CodeS3InvalidAccessKey, []string{"credentials.s3AccessKey"}},
		{"secret key", &smithy.GenericAPIError{Code: "SignatureDoesNotMatch"}, s3Rec, CodeS3SignatureMismatch, []string{"credentials.s3SecretKey"}},
		{"region", &smithy.GenericAPIError{Code: "AuthorizationHeaderMalformed"}, s3Rec, CodeS3WrongRegion, []string{"s3Region"}},
		{"other S3", &smithy.GenericAPIError{Code: "InvalidObjectState"}, s3Rec, CodeS3Error, []string{"InvalidObjectState"}},
		{"refused dial", &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 443}, Err: errors.New("connection refused")}, s3Rec,
			CodeUnreachable, []string{"192.0.2.1:443", "s3Endpoint"}},
		{"unknown name", &net.DNSError{Name: "nulle-part.example", Err: "no such host", IsNotFound: true}, sftpRec, CodeUnreachable, []string{"nulle-part.example", "l'URL"}},
		{"guard", fmt.Errorf("%w: 10.0.0.1 is private", netguard.ErrRefused), sftpRec, CodeLocationRefused, []string{"--allow-private-networks"}},
		{"ftp login", &textproto.Error{Code: 530, Msg: "Login incorrect."}, Record{URL: "ftp://u@h/"}, CodeFTPAuthFailed, []string{"credentials.password"}},
		{"timeout", context.DeadlineExceeded, sftpRec, CodeTimeout, []string{"à temps"}},
		{"path", fmt.Errorf("%w: /nope", storage.ErrNotFound), sftpRec, CodeNotFound, []string{"chemin"}},
		{"other", errors.New("disk on fire"), sftpRec, CodeStorageError, []string{"disk on fire"}},
	}
	for _, tc := range tests {
		p := s.explain(wrap(tc.err), tc.rec)
		if p.Code != tc.code || !containsAll(p.Message, tc.says...) {
			t.Errorf("%s: %+v, want %s saying %q", tc.name, p, tc.code, tc.says)
		}
	}
}

// TestOpenAPIMatchesRoutes: openapi.json documents every route Handler
// registers, with its method, and nothing else.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for p, ops := range doc.Paths {
		for method := range ops {
			if method != "parameters" {
				documented = append(documented, strings.ToUpper(method)+" "+p)
			}
		}
	}
	// The routes, as Handler writes them.
	f, err := parser.ParseFile(token.NewFileSet(), "api.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	ast.Inspect(f, func(n ast.Node) bool {
		fn, ok := n.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "Handler" {
			return true
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			lit, isLit := call.Args[0].(*ast.BasicLit)
			if !ok || !isLit || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
				return true
			}
			pattern, _ := strconv.Unquote(lit.Value)
			pattern = strings.NewReplacer("{$}", "", "...}", "}").Replace(pattern)
			if strings.HasSuffix(pattern, " ") {
				pattern += "/"
			}
			routes = append(routes, pattern)
			return true
		})
		return false
	})
	slices.Sort(routes)
	slices.Sort(documented)
	if len(routes) < 10 || !slices.Equal(routes, documented) {
		t.Errorf("routes and openapi.json differ:\nroutes:     %v\ndocumented: %v", routes, documented)
	}
}
