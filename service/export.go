package service

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/openpcrs/pcrs-indexer/indexer"
)

// csvHeader names the problems report's columns, in French: it is read
// in a spreadsheet by the owner. code stays the API's (English) code.
var csvHeader = []string{"dalle", "nature", "code", "explication", "longitude", "latitude", "x", "y", "crs", "dalles voisines attendues", "détail technique"}

// sideNames are the neighbours' sides as the report says them.
var sideNames = map[string]string{"west": "ouest", "east": "est", "south": "sud", "north": "nord"}

// csvRecord is r as a line of the report: decimals with a comma and
// without thousands separators (what a French spreadsheet reads as
// numbers), text cells guarded against formulas.
func csvRecord(r row) []string {
	nature := "à corriger"
	if r.Type == "warning" {
		nature = "à vérifier"
	}
	num := func(v *float64, decimals int) string {
		if v == nil {
			return ""
		}
		return csvNum(*v, decimals)
	}
	crs, xy := "", 1
	if r.EPSG != 0 {
		crs = "EPSG:" + strconv.Itoa(r.EPSG)
	}
	if r.Degrees {
		xy = 7
	}
	var near []string
	for _, n := range r.Neighbours {
		s := sideNames[n.Side] + " : " + n.Name
		if n.Missing {
			s += " (manquante aussi)"
		}
		near = append(near, s)
	}
	return []string{cell(r.Path), nature, cell(r.Code), cell(r.Explanation), num(r.Lon, 7), num(r.Lat, 7),
		num(r.X, xy), num(r.Y, xy), crs, cell(strings.Join(near, ", ")), cell(r.Detail)}
}

// cell guards a text cell against formula injection, as OWASP advises: a
// cell starting with = + - @, a tab or a carriage return gets a leading
// quote, so that a spreadsheet shows it as text rather than run it.
// Numbers the service writes itself (a negative longitude) are not text
// cells and stay numbers.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// openReport opens a storage's last report.json; false once it answered.
func (s *Service) openReport(w http.ResponseWriter, r *http.Request) (*Record, *os.File, bool) {
	rec, ok := s.record(w, r)
	if !ok {
		return nil, nil, false
	}
	f, err := os.Open(filepath.Join(s.outDir(rec.ID), indexer.ReportFile))
	if err != nil {
		fail(w, http.StatusNotFound, "storage %s has no successful scan yet", rec.ID)
		return nil, nil, false
	}
	return rec, f, true
}

// compressed is w gzip-compressed when the client takes gzip; finish
// flushes it.
func compressed(w http.ResponseWriter, r *http.Request) (io.Writer, func()) {
	w.Header().Set("Vary", "Accept-Encoding")
	if !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		return w, func() {}
	}
	w.Header().Set("Content-Encoding", "gzip")
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	return gz, func() { _ = gz.Close() }
}

// problemsCSV serves the problems report: one line per problem and per
// warning of the last report, holes included, for a spreadsheet opened in
// French (UTF-8 with a byte order mark, ";" between cells, CRLF). It is
// written as report.json is read: memory does not follow the report.
func (s *Service) problemsCSV(w http.ResponseWriter, r *http.Request) {
	rec, f, ok := s.openReport(w, r)
	if !ok {
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="problemes-`+fileSafe(rec.ID)+`.csv"`)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	out, finish := compressed(w, r)
	defer finish()
	if err := writeProblemsCSV(out, f); err != nil {
		// The answer has begun: it stays cut short, and the log says why.
		s.log.Error("writing the problems report", "storage", rec.ID, "error", err)
	}
}

// writeProblemsCSV writes report's rows as the CSV report.
func writeProblemsCSV(out io.Writer, report io.ReadSeeker) error {
	bw := bufio.NewWriterSize(out, 64<<10)
	if _, err := bw.WriteString("\uFEFF"); err != nil {
		return err
	}
	cw := csv.NewWriter(bw)
	cw.Comma, cw.UseCRLF = ';', true
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	err := eachRow(report, func(r row) error { return cw.Write(csvRecord(r)) })
	cw.Flush()
	if err == nil {
		err = cw.Error()
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// fileSafe keeps letters, digits, - and _ of s: a file name in a header.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && (r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return -1
	}, s)
}

// maxRowsPerCode bounds the rows of one code the JSON report lists.
const maxRowsPerCode = 10_000

// problemsJSON serves the same rows as JSON, for the delivery page: at
// most limit per code (and only the codes asked, when asked), with every
// row counted.
func (s *Service) problemsJSON(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := maxRowsPerCode
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			invalid(w, "limit : un nombre de lignes par code, au plus 10000.", nil)
			return
		}
		limit = min(n, maxRowsPerCode)
	}
	codes := map[string]bool{}
	for _, c := range q["code"] {
		codes[c] = true
	}
	_, f, ok := s.openReport(w, r)
	if !ok {
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	out, finish := compressed(w, r)
	defer finish()
	if err := writeProblemsJSON(out, f, codes, limit); err != nil {
		s.log.Error("writing the problems", "storage", r.PathValue("id"), "error", err)
	}
}

func writeProblemsJSON(out io.Writer, report io.ReadSeeker, codes map[string]bool, limit int) error {
	bw := bufio.NewWriterSize(out, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	counts := map[string]int{}
	first := true
	_, _ = bw.WriteString(`{"items":[`)
	err := eachRow(report, func(r row) error {
		if len(codes) > 0 && !codes[r.Code] {
			return nil
		}
		if counts[r.Code]++; counts[r.Code] > limit {
			return nil
		}
		if !first {
			_ = bw.WriteByte(',')
		}
		first = false
		return enc.Encode(r)
	})
	if err != nil {
		return err
	}
	tail, _ := json.Marshal(counts)
	_, _ = bw.WriteString(`],"counts":` + string(tail) + "}\n")
	return bw.Flush()
}
