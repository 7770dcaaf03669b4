package service

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Download tokens let a browser fetch tiles from storages it cannot reach
// (SFTP, FTP) through the service: HMAC-SHA256 over the storage id and an
// expiry, so the service keeps no token list.
//
// Two more signatures use the same key, each over a message that starts
// with its purpose, so that none can stand for another:
//   - a share key (long-lived): the storage id and the storage's share
//     nonce; rotating the nonce revokes every link given so far;
//   - a file token (short-lived): the storage id, one file's path and an
//     expiry; what a share page's download links carry, so that a page
//     shared with an owner cannot be turned into a key to any file.

var errBadToken = errors.New("bad or expired token")

func (s *Service) signToken(storageID string, expires time.Time) string {
	exp := make([]byte, 8)
	binary.BigEndian.PutUint64(exp, uint64(expires.Unix()))
	mac := hmac.New(sha256.New, s.tokenKey)
	mac.Write([]byte(storageID))
	mac.Write(exp)
	return base64.RawURLEncoding.EncodeToString(exp) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (s *Service) checkToken(storageID, token string, now time.Time) error {
	expPart, sigPart, ok := strings.Cut(token, ".")
	if !ok {
		return errBadToken
	}
	exp, err1 := base64.RawURLEncoding.DecodeString(expPart)
	sig, err2 := base64.RawURLEncoding.DecodeString(sigPart)
	if err1 != nil || err2 != nil || len(exp) != 8 {
		return errBadToken
	}
	mac := hmac.New(sha256.New, s.tokenKey)
	mac.Write([]byte(storageID))
	mac.Write(exp)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return errBadToken
	}
	if now.Unix() > int64(binary.BigEndian.Uint64(exp)) {
		return errBadToken
	}
	return nil
}

// purposeMAC is the HMAC of purpose then each part, every one
// length-prefixed: no two lists of parts sign alike, and no message
// starts like a download token's (a storage id, which is never a
// purpose's name).
func (s *Service) purposeMAC(purpose string, parts ...string) []byte {
	mac := hmac.New(sha256.New, s.tokenKey)
	var n [4]byte
	for _, p := range append([]string{purpose}, parts...) {
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		mac.Write(n[:])
		mac.Write([]byte(p))
	}
	return mac.Sum(nil)
}

// newShareNonce is a storage's share nonce: what its share keys sign.
func newShareNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// shareKey is the key of a storage's share links, bound to its id and
// nonce; "" when sharing is off (no nonce).
func (s *Service) shareKey(storageID, nonce string) string {
	if nonce == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(s.purposeMAC("share", storageID, nonce))
}

// checkShareKey says whether key is rec's current share key.
func (s *Service) checkShareKey(rec *Record, key string) error {
	sig, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil || rec.ShareNonce == "" || !hmac.Equal(sig, s.purposeMAC("share", rec.ID, rec.ShareNonce)) {
		return errBadToken
	}
	return nil
}

// signFileToken is a token for one file of a storage, at its location,
// until expires: a storage moved to another store (PATCH s3Endpoint) holds
// other objects under the same keys, which the links given for the first
// store's must not open.
func (s *Service) signFileToken(rec Record, path string, expires time.Time) string {
	exp := expires.Unix()
	return "f" + base64.RawURLEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, uint64(exp))) + "." +
		base64.RawURLEncoding.EncodeToString(s.purposeMAC("file", rec.ID, s.locationKey(rec), path, strconv.FormatInt(exp, 10)))
}

// checkFileToken says whether token is valid, now, for this file of this
// storage.
func (s *Service) checkFileToken(rec Record, path, token string, now time.Time) error {
	rest, ok := strings.CutPrefix(token, "f")
	expPart, sigPart, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return errBadToken
	}
	exp, err1 := base64.RawURLEncoding.DecodeString(expPart)
	sig, err2 := base64.RawURLEncoding.DecodeString(sigPart)
	if err1 != nil || err2 != nil || len(exp) != 8 {
		return errBadToken
	}
	expires := int64(binary.BigEndian.Uint64(exp))
	want := s.purposeMAC("file", rec.ID, s.locationKey(rec), path, strconv.FormatInt(expires, 10))
	if !hmac.Equal(sig, want) || now.Unix() > expires {
		return errBadToken
	}
	return nil
}
