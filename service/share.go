package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Sharing a delivery. Its page (/livraisons/{id}) is public, as the map
// and the reports are, and shows no download link. An admin gives the
// owner a share link: the page's address with the storage's share key.
// Opened with it, the page lists a download link per problem tile, each a
// short-lived token for that one file; the key itself downloads nothing,
// and only the files the last report lists as problems get a link.
// Revoking rotates the storage's share nonce: every link given so far
// stops working.

// shareMessage is what a bad share key is told, in French.
const shareMessage = "ce lien de partage n'est pas (ou plus) valide : il a été révoqué ou mal copié. Demandez un nouveau lien à l'administrateur du service."

// updateRecord applies change to storage id's record as it is now and
// stores it.
func (s *Service) updateRecord(id string, change func(*Record)) (*Record, error) {
	s.recordsMu.Lock()
	defer s.recordsMu.Unlock()
	cur, err := s.get(id)
	if err != nil {
		return nil, err
	}
	change(cur)
	if err := s.put(cur); err != nil {
		return nil, fmt.Errorf("storing storage %s: %w", id, err)
	}
	return cur, nil
}

// shareLink answers the storage's share link, making its share key first
// when it has none.
func (s *Service) shareLink(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.record(w, r)
	if !ok {
		return
	}
	cur, err := s.updateRecord(rec.ID, func(c *Record) {
		if c.ShareNonce == "" {
			c.ShareNonce = newShareNonce()
		}
	})
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	key := s.shareKey(cur.ID, cur.ShareNonce)
	p := "/livraisons/" + url.PathEscape(cur.ID) + "?cle=" + key
	writeJSON(w, http.StatusOK, map[string]string{"key": key, "path": p, "url": requestOrigin(r) + p})
}

// requestOrigin is the service's address as the request names it: the
// admin's own, which is also the owners' unless a proxy rewrites it (then
// path is what to append to the public address).
func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// revokeShare forgets the storage's share key: every share link given so
// far answers 403; the next share link has a new key.
func (s *Service) revokeShare(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.record(w, r)
	if !ok {
		return
	}
	if _, err := s.updateRecord(rec.ID, func(c *Record) { c.ShareNonce = "" }); err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	s.log.Info("share links revoked", "storage", rec.ID)
	w.WriteHeader(http.StatusNoContent)
}

// linksRequest is a download-links body: the share key and the problem
// tiles the page shows.
type linksRequest struct {
	Key   string   `json:"key"`
	Paths []string `json:"paths"`
}

// maxLinkPaths bounds the links asked at once: the page asks for those it
// lists.
const maxLinkPaths = 1000

// downloadLinks gives, for a valid share key, a short-lived download link
// for each path asked that the last report lists as a problem; other
// paths get none.
func (s *Service) downloadLinks(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.record(w, r)
	if !ok {
		return
	}
	var req linksRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4*maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || len(req.Paths) > maxLinkPaths {
		invalid(w, fmt.Sprintf("demande illisible : un objet JSON avec key (la clé du lien de partage) et paths (au plus %d chemins de dalles).", maxLinkPaths),
			fmt.Errorf("invalid download-links request: %v", errOr(err, errors.New("too many paths"))))
		return
	}
	if s.checkShareKey(rec, req.Key) != nil {
		refuse(w, http.StatusForbidden, Problem{Code: CodeShareKeyInvalid, Message: shareMessage}, "invalid or revoked share key")
		return
	}
	_, f, ok := s.openReport(w, r)
	if !ok {
		return
	}
	defer f.Close()
	wanted := make(map[string]bool, len(req.Paths))
	for _, p := range req.Paths {
		wanted[p] = true
	}
	expires := time.Now().Add(tokenLifetime)
	links := map[string]string{}
	err := walkReport(f, func(section string, dec *json.Decoder) error {
		var p *struct{ Path, RawPath string }
		if err := dec.Decode(&p); err != nil || p == nil {
			return skipTypeError(err)
		}
		if section != "problems" || !wanted[p.Path] || links[p.Path] != "" {
			return nil // two keys shown alike: the first keeps the link
		}
		// A key that is not UTF-8 is shown readably in path; the
		// object is named by its own bytes.
		key := p.Path
		if p.RawPath != "" {
			k, err := url.PathUnescape(p.RawPath)
			if err != nil {
				return nil
			}
			key = k
		}
		links[p.Path] = s.fileURL(*rec, key, expires)
		return nil
	}, nil)
	if err != nil {
		fail(w, http.StatusInternalServerError, "reading the report: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"expires": expires.UTC().Format(time.RFC3339), "links": links})
}

// fileURL is the download link of one file until expires.
func (s *Service) fileURL(rec Record, key string, expires time.Time) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/storages/" + url.PathEscape(rec.ID) + "/files/" + strings.Join(parts, "/") + "?token=" + url.QueryEscape(s.signFileToken(rec, key, expires))
}
