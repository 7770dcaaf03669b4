// Package catalog reads the PCRS national follow-up's CSV exports
// (projets.csv, livrables.csv, subventions.csv, tours-de-table.csv) and
// joins them into a livrable's attributes, so nobody retypes what is
// already published.
package catalog

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/openpcrs/pcrs-indexer/livrable"
)

// The export files and the columns the join needs. Other columns are
// ignored; a missing one is an error.
var files = map[string][]string{
	"projets.csv":        append([]string{"id_projet", "nom", "statut"}, dateColumns()...),
	"livrables.csv":      {"ref_projet", "nom", "licence", "diffusion", "diffusion_url", "diffusion_layer", "recouvr_lat", "recouvr_lon", "focale"},
	"subventions.csv":    {"ref_projet", "nature"},
	"tours-de-table.csv": {"ref_projet", "nom_acteur"},
}

func dateColumns() []string {
	var cols []string
	for _, s := range livrable.Statuses() {
		cols = append(cols, s+"_date")
	}
	return cols
}

// Reasons callers branch on.
var (
	ErrUnknownProject  = errors.New("unknown project")
	ErrUnknownLivrable = errors.New("unknown livrable")
	// ErrInvalid is a catalog that was read but is not usable: a missing
	// file in a folder, a missing column, a malformed line. A catalog that
	// could not be fetched is not ErrInvalid.
	ErrInvalid = errors.New("invalid catalog")
)

// table is one CSV export: rows as column → value.
type table struct {
	name string
	rows []map[string]string
}

// Catalog is the four exports, loaded.
type Catalog struct {
	projets, livrables, subventions, tours table
}

// Load reads the exports from a folder or a base URL (the public one ends
// in /data/).
func Load(ctx context.Context, location string, client *http.Client) (*Catalog, error) {
	if client == nil {
		client = &http.Client{Timeout: time.Minute}
	}
	read := func(name string) ([]byte, error) {
		raw, err := os.ReadFile(filepath.Join(location, name))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return raw, nil
	}
	if u, err := url.Parse(location); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		if !strings.HasSuffix(u.Path, "/") {
			u.Path += "/"
		}
		read = func(name string) ([]byte, error) { return fetch(ctx, client, u.JoinPath(name).String()) }
	}
	tables := map[string]*table{}
	// In a fixed order, so that a catalog with several faults always
	// reports the same one first.
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		raw, err := read(name)
		if err != nil {
			return nil, fmt.Errorf("catalog %s: %w", name, err)
		}
		t, err := parse(name, raw, files[name])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		tables[name] = t
	}
	return &Catalog{projets: *tables["projets.csv"], livrables: *tables["livrables.csv"],
		subventions: *tables["subventions.csv"], tours: *tables["tours-de-table.csv"]}, nil
}

func fetch(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	// The exports are a few megabytes; bound them anyway.
	return io.ReadAll(io.LimitReader(resp.Body, 256<<20))
}

// parse reads an RFC 4180 export: quoted fields with commas, quotes and
// newlines, CRLF line ends, a UTF-8 BOM, extra columns.
func parse(name string, raw []byte, required []string) (*table, error) {
	raw = bytes.TrimPrefix(raw, []byte("\ufeff"))
	r := csv.NewReader(bytes.NewReader(raw))
	r.FieldsPerRecord = -1 // checked below, with a clearer message
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("catalog %s: reading the header: %w", name, err)
	}
	index := map[string]int{}
	for i, h := range header {
		index[strings.TrimSpace(h)] = i
	}
	for _, col := range required {
		if _, ok := index[col]; !ok {
			return nil, fmt.Errorf("catalog %s: column %q missing (columns: %s)", name, col, strings.Join(header, ", "))
		}
	}
	t := &table{name: name}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("catalog %s: %w", name, err)
		}
		if len(rec) == 1 && rec[0] == "" {
			continue
		}
		if len(rec) != len(header) {
			line, _ := r.FieldPos(0)
			return nil, fmt.Errorf("catalog %s: line %d has %d fields, the header %d", name, line, len(rec), len(header))
		}
		row := make(map[string]string, len(required))
		for _, col := range required {
			row[col] = strings.TrimSpace(rec[index[col]])
		}
		t.rows = append(t.rows, row)
	}
	return t, nil
}

// Attributes joins the exports for one livrable of one project.
func (c *Catalog) Attributes(projet, nom string) (*livrable.Attributes, error) {
	var proj map[string]string
	for _, row := range c.projets.rows {
		if row["id_projet"] == projet {
			proj = row
			break
		}
	}
	if proj == nil {
		return nil, fmt.Errorf("%w %q in projets.csv", ErrUnknownProject, projet)
	}
	var liv map[string]string
	var names []string
	for _, row := range c.livrables.rows {
		if row["ref_projet"] != projet {
			continue
		}
		names = append(names, row["nom"])
		if row["nom"] == nom {
			if liv != nil {
				return nil, fmt.Errorf("livrables.csv: project %q (%s) has two livrables named %q", projet, proj["nom"], nom)
			}
			liv = row
		}
	}
	if liv == nil {
		return nil, fmt.Errorf("%w %q for project %q (%s) in livrables.csv; its livrables: %s", ErrUnknownLivrable, nom, projet, proj["nom"], quoteAll(names))
	}

	statut := proj["statut"]
	if statut == "" {
		return nil, fmt.Errorf("projets.csv: project %q (%s) has no statut", projet, proj["nom"])
	}
	if _, err := livrable.Calendrier(statut); err != nil {
		return nil, fmt.Errorf("projets.csv: project %q (%s): %w", projet, proj["nom"], err)
	}
	a := &livrable.Attributes{
		Projet:         projet,
		Nom:            liv["nom"],
		Statut:         statut,
		Licence:        liv["licence"],
		Diffusion:      liv["diffusion"],
		DiffusionURL:   liv["diffusion_url"],
		DiffusionLayer: liv["diffusion_layer"],
		Dates:          map[string]string{},
		Subventions:    distinct(c.subventions, projet, "nature"),
		Acteurs:        distinct(c.tours, projet, "nom_acteur"),
	}
	for _, s := range livrable.Statuses() {
		v := proj[s+"_date"]
		if v == "" {
			continue
		}
		d, err := parseDate(v)
		if err != nil {
			return nil, fmt.Errorf("projets.csv: project %q column %s_date: %w", projet, s, err)
		}
		a.Dates[s] = d
	}
	// A slice, not a map: with two bad columns the error names the same one
	// every time.
	for _, c := range []struct {
		col string
		dst **float64
	}{{"recouvr_lat", &a.RecouvrLat}, {"recouvr_lon", &a.RecouvrLon}, {"focale", &a.Focale}} {
		col, dst := c.col, c.dst
		v := liv[col]
		if v == "" {
			continue
		}
		f, err := strconv.ParseFloat(strings.Replace(v, ",", ".", 1), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) { // "nan" and "inf" parse, and no JSON output holds them
			return nil, fmt.Errorf("livrables.csv: livrable %q of project %q column %s: %q is not a number", nom, projet, col, v)
		}
		*dst = &f
	}
	return a, nil
}

// parseDate accepts a date or a timestamp and keeps the date.
func parseDate(v string) (string, error) {
	for _, layout := range []string{time.DateOnly, time.RFC3339, "2006-01-02T15:04:05.000Z07:00", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.Format(time.DateOnly), nil
		}
	}
	return "", fmt.Errorf("%q is not a date", v)
}

// distinct lists a column's distinct non-empty values for a project, in
// the order they first appear.
func distinct(t table, projet, col string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, row := range t.rows {
		if row["ref_projet"] != projet || row[col] == "" || seen[row[col]] {
			continue
		}
		seen[row[col]] = true
		out = append(out, row[col])
	}
	return out
}

func quoteAll(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, ", ")
}
