package service

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
)

// The sentences an owner reads about a problem or a warning, with what to
// do: the same as the map page's (web/app.js, REASON and WARNING), so that
// the CSV report and the page say the same thing.
// TestDeliveryPageInChromium checks every sentence of the CSV is on the
// page.

var reasonTexts = map[string]string{
	"empty":             "dalle vide : renvoyez le fichier",
	"corrupt":           "fichier illisible ou tronqué : renvoyez le fichier complet",
	"not_georeferenced": "aucun géoréférencement : ajoutez le fichier de calage (.tfw/.j2w) ou réécrivez la dalle avec son géoréférencement",
	"no_crs":            "aucun système de coordonnées : ajoutez le .prj ou réécrivez le GeoTIFF avec EPSG:2154",
	"misplaced":         "dalle placée hors de sa zone : vérifiez le code EPSG",
	"unreachable":       "le stockage n'a pas servi le fichier : vérifiez les droits et relancez",
}

func reasonText(reason string) string {
	if t, ok := reasonTexts[reason]; ok {
		return t
	}
	return "problème non identifié : voyez le rapport"
}

// warningText is a warning's sentence, without the tile's path (the page
// puts it before, the CSV in its own column).
func warningText(w *reportEntry) string {
	other := w.Other
	if other == "" {
		other = "une autre dalle"
	}
	switch w.Kind {
	case "off_grid":
		o := ""
		if off, ok := w.offset(); ok {
			o = " (décalée de " + frNum(off[0], 2) + " m en X et " + frNum(off[1], 2) + " m en Y)"
		}
		return "hors de la grille de la livraison" + o + " : vérifiez son géoréférencement"
	case "overlap":
		area := ""
		if w.AreaM2 != nil {
			area = frNum(*w.AreaM2, 0) + " m² de "
		}
		return "recouvre " + area + other + " : l'une des deux est mal placée"
	case "duplicate":
		return "même emprise que " + other + " : dalle livrée deux fois ?"
	case "name_mismatch":
		exp := ""
		if w.Expected != "" {
			exp = " (attendu : " + w.Expected + ")"
		}
		return "son nom ne correspond pas à sa position" + exp + " : renommez-la ou corrigez son géoréférencement"
	case "resolution":
		return "résolution différente du reste de la livraison : vérifiez la dalle"
	case "mixed":
		return "la livraison mélange " + mixedValues(w.Counts) + " : harmonisez-la"
	case "size_outlier":
		r := ""
		if w.Ratio != nil {
			r = " (" + frNum(*w.Ratio*100, 1) + " % de la médiane)"
		}
		return "beaucoup plus petite que ses voisines" + r + " : dalle en grande partie vide ?"
	case "missing":
		if name := w.missingName(); name != "" {
			return "dalle manquante : " + name + " : livrez-la"
		}
		return "dalle manquante : livrez-la"
	}
	return "à vérifier : voyez le rapport"
}

// mixedValues lists a mixed warning's values, the most common first, as
// the page does: JavaScript keeps an object's keys in their order in the
// file, integer-like keys first and ascending, and its sort is stable.
func mixedValues(raw json.RawMessage) string {
	type kv struct {
		k string
		n float64
	}
	var entries []kv
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "plusieurs formats"
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "plusieurs formats"
		}
		var n float64
		if err := dec.Decode(&n); err != nil {
			return "plusieurs formats"
		}
		entries = append(entries, kv{t.(string), n})
	}
	if len(entries) == 0 {
		return "plusieurs formats"
	}
	index := func(k string) (uint64, bool) {
		v, err := strconv.ParseUint(k, 10, 32)
		return v, err == nil && v < math.MaxUint32 && strconv.FormatUint(v, 10) == k
	}
	sort.SliceStable(entries, func(i, j int) bool {
		a, aok := index(entries[i].k)
		b, bok := index(entries[j].k)
		return aok && (!bok || a < b)
	})
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].n > entries[j].n })
	parts := make([]string, len(entries))
	for i, e := range entries {
		parts[i] = e.k + " (" + frNum(e.n, 0) + ")"
	}
	return strings.Join(parts, ", ")
}

// frNum writes v as the page does (toLocaleString('fr-FR')): at most
// decimals decimals, a decimal comma, thousands split by a narrow no-break
// space. As ECMAScript's Intl, it rounds the shortest decimal that reads
// back as v, half away from zero (1200.5 → 1 201, 1.005 → 1,01).
func frNum(v float64, decimals int) string {
	whole, frac := roundDecimal(strconv.FormatFloat(math.Abs(v), 'f', -1, 64), decimals)
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
	}
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteString("\u202f")
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("," + frac)
	}
	return b.String()
}

// roundDecimal rounds a non-negative decimal ("1200.5") to decimals
// decimals, half away from zero, without trailing zeros.
func roundDecimal(s string, decimals int) (whole, frac string) {
	whole, frac, _ = strings.Cut(s, ".")
	if len(frac) > decimals {
		up := frac[decimals] >= '5'
		digits := []byte(whole + frac[:decimals])
		for i := len(digits) - 1; up && i >= 0; i-- {
			if digits[i] == '9' {
				digits[i] = '0'
			} else {
				digits[i]++
				up = false
			}
		}
		if up {
			digits = append([]byte{'1'}, digits...)
		}
		whole, frac = string(digits[:len(digits)-decimals]), string(digits[len(digits)-decimals:])
	}
	return whole, strings.TrimRight(frac, "0")
}

// csvNum writes v for a spreadsheet opened in French: a decimal comma, no
// thousands separator, at most decimals decimals.
func csvNum(v float64, decimals int) string {
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return strings.Replace(s, ".", ",", 1)
}
