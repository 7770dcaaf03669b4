package service

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"
)

// Download tokens let a browser fetch tiles from storages it cannot reach
// (SFTP, FTP) through the service: HMAC-SHA256 over the storage id and an
// expiry, so the service keeps no token list.

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
