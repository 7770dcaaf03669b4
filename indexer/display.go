package indexer

import (
	"strings"
	"unicode/utf8"
)

// DisplayName is key (or a text quoting keys) as the outputs write it.
// Keys are bytes: an FTP or web server of a French local authority may
// still name its files in Windows-1252 ("r\xe9seau.jp2"), which JSON
// cannot carry and would turn into "r\uFFFDseau.jp2". A byte that is not
// UTF-8 is read as Windows-1252 instead, so that the owner reads
// "réseau.jp2"; a valid UTF-8 key is returned as it is.
func DisplayName(key string) string {
	if utf8.ValidString(key) {
		return key
	}
	var b strings.Builder
	b.Grow(len(key) + len(key)/2)
	for i := 0; i < len(key); {
		r, size := utf8.DecodeRuneInString(key[i:])
		if r == utf8.RuneError && size == 1 {
			r = windows1252(key[i])
		}
		b.WriteRune(r)
		i += size
	}
	return b.String()
}

// cp1252High are Windows-1252's characters for 0x80 to 0x9F (Latin-1's
// C1 controls there); the five bytes it leaves undefined are U+FFFD.
var cp1252High = [32]rune{
	'€', '\uFFFD', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\uFFFD', 'Ž', '\uFFFD',
	'\uFFFD', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\uFFFD', 'ž', 'Ÿ',
}

func windows1252(c byte) rune {
	if c >= 0x80 && c < 0xA0 {
		return cp1252High[c-0x80]
	}
	return rune(c) // 0xA0 to 0xFF are Latin-1's, which Unicode's first 256 are
}

// escapedKey is a key that is not UTF-8 in a form JSON carries without
// loss: its bytes that are not UTF-8, and '%', as %XX, the rest as is, so
// that url.PathUnescape gives the key back. "" for a UTF-8 key.
func escapedKey(key string) string {
	if utf8.ValidString(key) {
		return ""
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(key); {
		r, size := utf8.DecodeRuneInString(key[i:])
		if r == utf8.RuneError && size == 1 || key[i] == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[key[i]>>4])
			b.WriteByte(hex[key[i]&0xF])
		} else {
			b.WriteString(key[i : i+size])
		}
		i += size
	}
	return b.String()
}
