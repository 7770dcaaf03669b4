package indexer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/openpcrs/pcrs-indexer/footprint"
	"github.com/openpcrs/pcrs-indexer/internal/jsonstream"
	"github.com/openpcrs/pcrs-indexer/vector"
	"github.com/paulmach/orb"
)

// Output file names.
const (
	DallesFile = "dalles.geojson"
	// DallesFGBFile is the tiles in FlatGeobuf (--format fgb), with the
	// spatial index the service's map reads its view through.
	DallesFGBFile = "dalles.fgb"
	LivrablesFile = "livrables.geojson"
	ReportFile    = "report.json"
	// FailedReportFile receives the report of a scan that did not finish,
	// leaving the last good outputs in place.
	FailedReportFile = "report.failed.json"
)

// dalleProperties are RasterPCRS's (§B.3.38), in SPEC.md's order; the
// null-valued ones are left empty by the standard.
type dalleProperties struct {
	NomImage                              string   `json:"nomImage"`
	IDPCRS                                *string  `json:"idPCRS"`
	Resolution                            int      `json:"resolution"`
	TypeImage                             string   `json:"typeImage"`
	TailleFichier                         int64    `json:"tailleFichier"`
	TailleImage                           string   `json:"tailleImage"`
	Compression                           string   `json:"compression"`
	EPSG                                  string   `json:"epsg"`
	Bandes                                string   `json:"bandes"`
	Open                                  bool     `json:"open"`
	Licence                               *string  `json:"licence"`
	Focale                                *float64 `json:"focale"`
	DateAcquisition                       *string  `json:"dateAcquisition"`
	DateRecette                           *string  `json:"dateRecette"`
	DescriptionElementsQualite            *string  `json:"descriptionElementsQualite"`
	Producteur                            *string  `json:"producteur"`
	PrecisionplanimetriqueCorpsdeRue      *string  `json:"precisionplanimetriqueCorpsdeRue"`
	PrecisionplanimetriqueZonesNaturelles *string  `json:"precisionplanimetriqueZonesNaturelles"`
	// Extras: where the tile is, and where GDAL opens it from (null where
	// GDAL has no virtual file system for the storage).
	Chemin   string  `json:"chemin"`
	Stockage string  `json:"stockage"`
	Location *string `json:"location"`
}

// livrableProperties are EmpriseDisponibilitePCRS's (§B.3.2).
type livrableProperties struct {
	Initiative     *string  `json:"initiative"`
	DateActualite  *string  `json:"dateActualite"`
	Calendrier     *string  `json:"calendrier"`
	Nom            string   `json:"nom"`
	Format         *string  `json:"format"`
	Compression    *string  `json:"compression"`
	EPSG           *string  `json:"epsg"`
	Taille         int64    `json:"taille"`
	RecouvrLat     *float64 `json:"recouvrLat"`
	RecouvrLon     *float64 `json:"recouvrLon"`
	Focale         *float64 `json:"focale"`
	Licence        *string  `json:"licence"`
	Subventions    []string `json:"subventions"`
	Acteurs        []string `json:"acteurs"`
	Diffusion      *string  `json:"diffusion"`
	DiffusionURL   *string  `json:"diffusionUrl"`
	DiffusionLayer *string  `json:"diffusionLayer"`
	// Extras.
	NbDalles int    `json:"nbDalles"`
	Stockage string `json:"stockage"`
}

type feature struct {
	Type       string    `json:"type"`
	Geometry   *geometry `json:"geometry"`
	Properties any       `json:"properties"`
}

// geometry is a GeoJSON Polygon or MultiPolygon: orb's types marshal to
// the nested coordinate arrays GeoJSON wants.
type geometry struct {
	Type        string `json:"type"`
	Coordinates any    `json:"coordinates"`
}

func polygonGeometry(p orb.Polygon) *geometry { return &geometry{"Polygon", p} }

func outlineGeometry(mp orb.MultiPolygon) *geometry {
	switch len(mp) {
	case 0:
		return nil
	case 1:
		return polygonGeometry(mp[0])
	}
	return &geometry{"MultiPolygon", mp}
}

// location is where GDAL opens key, "" when JSON cannot say it: a local
// name that is not UTF-8 (URLs escape such bytes and stay usable).
func location(locate func(string) string, key string) string {
	if loc := locate(key); utf8.ValidString(loc) {
		return loc
	}
	return ""
}

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func epsgName(code int) string { return "EPSG:" + strconv.Itoa(code) }

func bandes(t *Tile) string {
	if t.Header == nil {
		return ""
	}
	s := ""
	for i, b := range t.Header.Bands {
		if i > 0 {
			s += "/"
		}
		s += b.Color + "(" + b.DataType + ")"
	}
	return s
}

// writeDalles streams one feature per readable tile: a national run holds
// hundreds of thousands, never all in memory as GeoJSON at once.
func writeDalles(w io.Writer, res *Result, opts footprint.Options) error {
	var ps footprint.Projectors
	defer ps.Close()
	attrs := res.Livrable.Attributes
	source := res.source
	if source == "" {
		source = res.Livrable.Storage // a Result built by hand
	}
	locate := gdalLocator(source)
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.WriteString(`{"type":"FeatureCollection","features":[`); err != nil {
		return err
	}
	first := true
	err := res.spool.each(flagReadable, func(t *Tile) error {
		if t.Header == nil {
			return nil
		}
		poly, err := ps.TilePolygon(t.Polygon, opts)
		if errors.Is(err, footprint.ErrMisplaced) {
			return nil // buildOutline made it a problem; a result built otherwise must not publish it
		}
		if err != nil {
			return fmt.Errorf("%s: %w", t.Object.Key, err)
		}
		h, name := t.Header, DisplayName(t.Object.Key)
		f := feature{Type: "Feature", Geometry: polygonGeometry(poly), Properties: dalleProperties{
			NomImage:      path.Base(name),
			IDPCRS:        strOrNil(attrs.Projet),
			Resolution:    int(math.Round(h.PixelSize() * 100)),
			TypeImage:     h.MimeType,
			TailleFichier: t.Object.Size,
			TailleImage:   strconv.Itoa(h.Height) + "x" + strconv.Itoa(h.Width),
			Compression:   h.Compression,
			EPSG:          epsgName(h.EPSG),
			Bandes:        bandes(t),
			Open:          h.OpenDriver,
			Licence:       strOrNil(attrs.Licence),
			Focale:        attrs.Focale,
			Chemin:        name,
			Stockage:      res.Livrable.Storage,
			Location:      strOrNil(location(locate, t.Object.Key)),
		}}
		if !first {
			if err := bw.WriteByte(','); err != nil {
				return err
			}
		}
		first = false
		b, err := json.Marshal(f)
		if err != nil {
			return err
		}
		_, err = bw.Write(append([]byte("\n"), b...))
		return err
	})
	if err != nil {
		return err
	}
	if _, err := bw.WriteString("\n]}\n"); err != nil {
		return err
	}
	return bw.Flush()
}

func livrableFeature(res *Result) feature {
	a := res.Livrable.Attributes
	p := livrableProperties{
		Initiative:     strOrNil(a.Projet),
		DateActualite:  strOrNil(a.DateActualiteValue()),
		Calendrier:     strOrNil(a.CalendrierCode()),
		Nom:            res.Livrable.Name,
		Format:         res.summary.format.value(),
		Compression:    res.summary.compression.value(),
		EPSG:           res.summary.epsg.value(),
		RecouvrLat:     a.RecouvrLat,
		RecouvrLon:     a.RecouvrLon,
		Focale:         a.Focale,
		Licence:        strOrNil(a.Licence),
		Subventions:    nonNil(a.Subventions),
		Acteurs:        nonNil(a.Acteurs),
		Diffusion:      strOrNil(a.Diffusion),
		DiffusionURL:   strOrNil(a.DiffusionURL),
		DiffusionLayer: strOrNil(a.DiffusionLayer),
		Stockage:       res.Livrable.Storage,
		Taille:         res.summary.taille,
		NbDalles:       res.summary.nbDalles,
	}
	return feature{Type: "Feature", Geometry: outlineGeometry(res.Outline.WGS84), Properties: p}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeLivrables(w io.Writer, res *Result) error {
	fc := struct {
		Type     string    `json:"type"`
		Features []feature `json:"features"`
	}{"FeatureCollection", []feature{livrableFeature(res)}}
	enc := json.NewEncoder(w)
	return enc.Encode(fc)
}

// problemsSlot is where report.json's problems go, as the encoder writes
// an empty list of them: the one key at the top level indented so.
const problemsSlot = "\n  \"problems\": []"

// writeReport writes r as report.json, its problems from each when given
// (a scan's, read back from disk one at a time), else r.Problems. The
// bytes are those encoding r with its problems in it would give.
func writeReport(w io.Writer, r *Report, each func(fn func(p *ProblemEntry) error) error) error {
	if each == nil {
		each = func(fn func(p *ProblemEntry) error) error {
			for i := range r.Problems {
				if err := fn(&r.Problems[i]); err != nil {
					return err
				}
			}
			return nil
		}
	}
	head := *r
	head.Problems = []ProblemEntry{}
	var buf bytes.Buffer
	if err := indented(&buf, "").Encode(&head); err != nil {
		return err
	}
	i := bytes.Index(buf.Bytes(), []byte(problemsSlot))
	if i < 0 || bytes.Count(buf.Bytes(), []byte(problemsSlot)) != 1 {
		return errors.New("report.json: no single place for the problems in the encoded report")
	}
	at := i + len(problemsSlot) - 1 // the list's ']'
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.Write(buf.Bytes()[:at])
	var elem bytes.Buffer
	enc := indented(&elem, "    ")
	n := 0
	err := each(func(p *ProblemEntry) error {
		elem.Reset()
		if err := enc.Encode(p); err != nil {
			return err
		}
		if n > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n    ")
		n++
		// A full disk stops the reading back at once.
		_, err := bw.Write(bytes.TrimSuffix(elem.Bytes(), []byte("\n")))
		return err
	})
	if err != nil {
		return err
	}
	if n > 0 {
		bw.WriteString("\n  ")
	}
	bw.Write(buf.Bytes()[at:])
	return bw.Flush()
}

// indented is report.json's encoder: two spaces, no HTML escaping; prefix
// starts every line but the first.
func indented(w io.Writer, prefix string) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetIndent(prefix, "  ")
	enc.SetEscapeHTML(false)
	return enc
}

// Publish writes the three outputs into dir. Each is written to a temporary
// file beside its target, synced, then renamed over it, so readers and a
// crash never see a half-written file; the report goes last. Outputs holding
// more than twice the readable tiles res found are kept (ErrShrunk, the
// report written as report.failed.json) unless the scan allowed it.
func Publish(dir string, res *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := checkShrink(dir, res); err != nil {
		if perr := PublishFailed(dir, res); perr != nil {
			return errors.Join(err, perr)
		}
		return err
	}
	steps := []struct {
		name  string
		write func(io.Writer) error
	}{
		{DallesFile, func(w io.Writer) error { return writeDalles(w, res, res.footprint) }},
		{LivrablesFile, func(w io.Writer) error { return writeLivrables(w, res) }},
		{ReportFile, func(w io.Writer) error { return writeReport(w, &res.Report, res.EachProblem) }},
	}
	var temps []string
	defer func() {
		for _, t := range temps {
			_ = os.Remove(t)
		}
	}()
	for _, s := range steps {
		tmp, err := writeTemp(dir, s.name, s.write)
		if err != nil {
			return err
		}
		temps = append(temps, tmp)
	}
	if len(res.formats) > 0 {
		problems, err := writeTemp(dir, "problemes.geojson", func(w io.Writer) error {
			return WriteProblems(w, func(fn func(p *ProblemEntry, livrable string) error) error {
				return res.EachProblem(func(p *ProblemEntry) error { return fn(p, "") })
			})
		})
		if err != nil {
			return err
		}
		temps = append(temps, problems)
		if err := WriteFormats(dir, res.formats, temps[0], temps[1], problems); err != nil {
			return err
		}
	}
	for i, s := range steps {
		if err := os.Rename(temps[i], filepath.Join(dir, s.name)); err != nil {
			return err
		}
	}
	// A failed attempt's report is stale once a scan succeeds.
	if err := os.Remove(filepath.Join(dir, FailedReportFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(dir)
}

// WriteAtomically writes a file through a synced temporary file renamed
// over it: readers and a crash never see it half-written.
func WriteAtomically(path string, write func(io.Writer) error) error {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := writeTemp(dir, name, write)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// WriteFormats writes the outputs in the other encodings asked for, from
// the GeoJSON files dalles, livrables and problems: dalles.fgb,
// livrables.fgb and problemes.fgb; dalles.gpkg (layers dalles and
// problemes) and livrables.gpkg.
func WriteFormats(dir string, formats []vector.Format, dalles, livrables, problems string) error {
	for _, f := range formats {
		var err error
		switch f {
		case vector.FlatGeobuf:
			err = errors.Join(
				vector.Write(filepath.Join(dir, DallesFGBFile), f, vector.Layer{Source: dalles, Name: "dalles"}),
				vector.Write(filepath.Join(dir, "livrables.fgb"), f, vector.Layer{Source: livrables, Name: "livrables"}),
				vector.Write(filepath.Join(dir, "problemes.fgb"), f, vector.Layer{Source: problems, Name: "problemes"}))
		case vector.GeoPackage:
			err = errors.Join(
				vector.Write(filepath.Join(dir, "dalles.gpkg"), f, vector.Layer{Source: dalles, Name: "dalles"}, vector.Layer{Source: problems, Name: "problemes"}),
				vector.Write(filepath.Join(dir, "livrables.gpkg"), f, vector.Layer{Source: livrables, Name: "livrables"}))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// problemProperties are a problem tile's, as a feature of the problems
// layer (where its header placed it, else without geometry).
type problemProperties struct {
	Path     string `json:"path"`
	Reason   string `json:"reason"`
	Detail   string `json:"detail"`
	Livrable string `json:"livrable,omitempty"`
}

// WriteProblems writes the problems each gives, one at a time, as a
// GeoJSON FeatureCollection, for the encodings QGIS opens as a layer; a
// problem's livrable is named when not "" (a national run).
func WriteProblems(w io.Writer, each func(fn func(p *ProblemEntry, livrable string) error) error) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.WriteString(`{"type":"FeatureCollection","features":[`)
	n := 0
	err := each(func(p *ProblemEntry, livrable string) error {
		if n > 0 {
			bw.WriteByte(',')
		}
		n++
		props := problemProperties{Path: p.Path, Reason: p.Reason, Detail: p.Detail, Livrable: livrable}
		b, err := json.Marshal(feature{Type: "Feature", Geometry: p.Geometry, Properties: props})
		if err != nil {
			return err
		}
		bw.WriteByte('\n')
		_, err = bw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	bw.WriteString("\n]}\n")
	return bw.Flush()
}

// checkShrink compares res with the report of the outputs it would replace.
func checkShrink(dir string, res *Result) error {
	if res.allowShrink {
		return nil
	}
	f, err := os.Open(filepath.Join(dir, ReportFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the published report: %w", err)
	}
	defer f.Close()
	var prev Counts
	// The report is ours, but a damaged one must not block publishing
	// forever.
	if err := reportField(f, "counts", &prev); err != nil {
		return nil
	}
	now := res.Report.Counts.Readable
	if was := prev.Readable; now*2 < was {
		return fmt.Errorf("%w: %d readable tiles now, %d in %s (--allow-shrink if the delivery really shrank)", ErrShrunk, now, was, filepath.Join(dir, ReportFile))
	}
	return nil
}

// PublishedAt is when the outputs in dir were made: their report's end, or
// zero when there are none.
func PublishedAt(dir string) time.Time {
	f, err := os.Open(filepath.Join(dir, ReportFile))
	if err != nil {
		return time.Time{}
	}
	defer f.Close()
	var finished time.Time
	if err := reportField(f, "finishedAt", &finished); err != nil {
		return time.Time{}
	}
	return finished
}

// errNoField is a report without the field asked for.
var errNoField = errors.New("no such field in the report")

// reportField decodes the report's top-level field key into v, reading
// the report token by token up to it: the problems may take hundreds of
// MB (a delivery of broken tiles), and decoding the report whole to read
// its counts held them all. The counts come before the problems; a field
// after them costs the time to skip them, never their memory.
func reportField(r io.Reader, key string, v any) error {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<16))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("a report is a JSON object: %v %w", t, err)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		if t == key {
			return dec.Decode(v)
		}
		if err := jsonstream.Skip(dec); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w: %s", errNoField, key)
}

// CheckOut makes sure outputs can be written into dir, before a scan spends
// hours finding out.
func CheckOut(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	f, err := os.CreateTemp(dir, ".check.*.tmp")
	if err != nil {
		return fmt.Errorf("output folder %s is not writable: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// PublishFailed writes the report of a scan that did not finish beside the
// last good outputs, which it leaves alone.
func PublishFailed(dir string, res *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := writeTemp(dir, FailedReportFile, func(w io.Writer) error { return writeReport(w, &res.Report, res.EachProblem) })
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, FailedReportFile)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func writeTemp(dir, name string, write func(io.Writer) error) (string, error) {
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return "", err
	}
	if err := write(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
