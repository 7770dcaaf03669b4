// Package livrable holds a livrable's descriptive attributes (project,
// status, licence, grants…), as given in an attributes file or joined from
// the PCRS catalog exports, and maps them to the EmpriseDisponibilitePCRS
// fields.
package livrable

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Attributes describe a livrable. Every field is optional.
type Attributes struct {
	// Projet is the PCRS project UUID (initiative, idPCRS).
	Projet string `yaml:"projet" json:"projet,omitempty"`
	// Nom is the livrable's name.
	Nom string `yaml:"nom" json:"nom,omitempty"`
	// Statut is the project's current status (investigation … obsolete).
	Statut string `yaml:"statut" json:"statut,omitempty"`
	// Dates maps each status to the date it began (YYYY-MM-DD).
	Dates map[string]string `yaml:"dates" json:"dates,omitempty"`
	// DateActualite overrides the date taken from Dates[Statut].
	DateActualite string `yaml:"dateActualite" json:"dateActualite,omitempty"`
	Licence       string `yaml:"licence" json:"licence,omitempty"`
	// Resolution is the pixel size the livrable announces, in centimetres:
	// tiles of another resolution are warned about.
	Resolution     *float64 `yaml:"resolution" json:"resolution,omitempty"`
	Focale         *float64 `yaml:"focale" json:"focale,omitempty"`
	RecouvrLat     *float64 `yaml:"recouvrLat" json:"recouvrLat,omitempty"`
	RecouvrLon     *float64 `yaml:"recouvrLon" json:"recouvrLon,omitempty"`
	Subventions    []string `yaml:"subventions" json:"subventions,omitempty"`
	Acteurs        []string `yaml:"acteurs" json:"acteurs,omitempty"`
	Diffusion      string   `yaml:"diffusion" json:"diffusion,omitempty"`
	DiffusionURL   string   `yaml:"diffusionUrl" json:"diffusionUrl,omitempty"`
	DiffusionLayer string   `yaml:"diffusionLayer" json:"diffusionLayer,omitempty"`
}

// Statuses in project order, with their CalendrierPCRSType code.
var calendrier = map[string]string{
	"investigation":          "03",
	"convention_signee":      "03",
	"marche_public_en_cours": "03",
	"prod_en_cours":          "02",
	"controle_en_cours":      "02",
	"realise":                "01",
	"disponible":             "01",
	"obsolete":               "01",
}

// ErrUnknownStatus is returned for a status outside the PCRS list.
var ErrUnknownStatus = errors.New("unknown project status")

// Calendrier maps a project status to its CalendrierPCRSType code.
func Calendrier(statut string) (string, error) {
	c, ok := calendrier[statut]
	if !ok {
		return "", fmt.Errorf("%w %q (known: %s)", ErrUnknownStatus, statut, strings.Join(Statuses(), ", "))
	}
	return c, nil
}

// Statuses lists the known project statuses.
func Statuses() []string {
	out := make([]string, 0, len(calendrier))
	for s := range calendrier {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Load reads attributes from a YAML or JSON file. Unknown keys are errors:
// a typo must not silently empty a published field.
func Load(path string) (*Attributes, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := checkShape(raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Decoded again: yaml.v3 refuses unknown keys only in a Decoder, not
	// in Node.Decode. The file is small and now known to be plain.
	dec := yaml.NewDecoder(bytes.NewReader(raw)) // JSON is YAML
	dec.KnownFields(true)
	var a Attributes
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// A second document would be dropped without a word; an empty one
	// (a trailing "---") is harmless. Bounded: each Decode consumes input.
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: after the attributes: %w", path, err)
		}
		if len(extra.Content) > 0 && !(extra.Content[0].Kind == yaml.ScalarNode && extra.Content[0].Tag == "!!null") {
			return nil, fmt.Errorf("%s: one document of attributes expected, another follows (line %d)", path, extra.Line)
		}
	}
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &a, nil
}

// An attributes file holds a few dozen values, three levels deep (the
// document, its keys, the dates). These limits are far above that and
// keep the walk below short and shallow whatever the file.
const (
	maxNodes = 10_000
	maxDepth = 32
)

// checkShape refuses, before any decoding into attributes, YAML aliases
// and documents too large or too deep for attributes. An alias (*name)
// repeats the value anchored &name without repeating its text: 160 KB of
// them made 20,001 acteurs and 1.6 GB of JSON. People write these files by
// hand and have no use for aliases, so they are refused rather than
// counted.
func checkShape(raw []byte) error {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(raw)).Decode(&doc); err != nil {
		return err // io.EOF for an empty file, as the decoding would say
	}
	nodes := 0
	var walk func(n *yaml.Node, depth int) error
	walk = func(n *yaml.Node, depth int) error {
		nodes++
		switch {
		case n.Kind == yaml.AliasNode:
			return fmt.Errorf("line %d: *%s repeats the value marked &%s: write that value out in full instead (YAML aliases are refused: a few lines of them can expand to gigabytes)", n.Line, n.Value, n.Value)
		case nodes > maxNodes:
			return fmt.Errorf("line %d: more than %d values, far more than attributes hold", n.Line, maxNodes)
		case depth > maxDepth:
			return fmt.Errorf("line %d: values nested more than %d levels deep, far more than attributes hold", n.Line, maxDepth)
		}
		for _, c := range n.Content {
			if err := walk(c, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(&doc, 0)
}

// Validate checks the status, the dates (in a stable order: the first
// wrong one is always the same) and that numbers are finite (.inf in YAML
// loads, and no JSON output can hold it).
func (a *Attributes) Validate() error {
	if a.Statut != "" {
		if _, err := Calendrier(a.Statut); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		v    *float64
	}{{"resolution", a.Resolution}, {"focale", a.Focale}, {"recouvrLat", a.RecouvrLat}, {"recouvrLon", a.RecouvrLon}} {
		if f.v != nil && (math.IsInf(*f.v, 0) || math.IsNaN(*f.v)) {
			return fmt.Errorf("%s: %v is not a number", f.name, *f.v)
		}
	}
	for _, status := range slices.Sorted(maps.Keys(a.Dates)) {
		d := a.Dates[status]
		if _, ok := calendrier[status]; !ok {
			return fmt.Errorf("dates: %w %q", ErrUnknownStatus, status)
		}
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			return fmt.Errorf("dates.%s: %q is not a YYYY-MM-DD date", status, d)
		}
	}
	if a.DateActualite != "" {
		if _, err := time.Parse(time.DateOnly, a.DateActualite); err != nil {
			return fmt.Errorf("dateActualite: %q is not a YYYY-MM-DD date", a.DateActualite)
		}
	}
	return nil
}

// Merge returns a copy of base with every field set in over replacing it.
func Merge(base, over *Attributes) *Attributes {
	var out Attributes
	if base != nil {
		out = *base
	}
	if over == nil {
		return &out
	}
	setStr := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	setStr(&out.Projet, over.Projet)
	setStr(&out.Nom, over.Nom)
	setStr(&out.Statut, over.Statut)
	setStr(&out.DateActualite, over.DateActualite)
	setStr(&out.Licence, over.Licence)
	setStr(&out.Diffusion, over.Diffusion)
	setStr(&out.DiffusionURL, over.DiffusionURL)
	setStr(&out.DiffusionLayer, over.DiffusionLayer)
	if over.Focale != nil {
		out.Focale = over.Focale
	}
	if over.RecouvrLat != nil {
		out.RecouvrLat = over.RecouvrLat
	}
	if over.RecouvrLon != nil {
		out.RecouvrLon = over.RecouvrLon
	}
	if over.Subventions != nil {
		out.Subventions = over.Subventions
	}
	if over.Acteurs != nil {
		out.Acteurs = over.Acteurs
	}
	if len(over.Dates) > 0 {
		out.Dates = map[string]string{}
		for k, v := range base.datesOrNil() {
			out.Dates[k] = v
		}
		for k, v := range over.Dates {
			out.Dates[k] = v
		}
	}
	return &out
}

func (a *Attributes) datesOrNil() map[string]string {
	if a == nil {
		return nil
	}
	return a.Dates
}

// CalendrierCode is the livrable's calendrier, or "" without a status.
func (a *Attributes) CalendrierCode() string {
	c, _ := Calendrier(a.Statut)
	return c
}

// DateActualiteValue is the date the current status began, or "".
func (a *Attributes) DateActualiteValue() string {
	if a.DateActualite != "" {
		return a.DateActualite
	}
	return a.Dates[a.Statut]
}
