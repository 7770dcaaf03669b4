package service

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Basemap is one background layer of the map page: an XYZ tile URL
// template ({z}, {x}, {y} or {-y}; a WMTS KVP GetTile URL in the
// PM/EPSG:3857 matrix set is one too).
type Basemap struct {
	Name        string `json:"name"`
	URL         string `json:"url"`
	Attribution string `json:"attribution"`
	// MaxNativeZoom is the last zoom level the server has tiles for; the
	// page enlarges them past it.
	MaxNativeZoom int `json:"maxNativeZoom"`
}

// IGNAttribution is the attribution the IGN asks for on its Géoplateforme
// layers.
const IGNAttribution = "© IGN – Géoplateforme"

// geopfWMTS is the Géoplateforme's WMTS GetTile request, key-value pairs,
// in its PM (Web Mercator) tile matrix set.
const geopfWMTS = "https://data.geopf.fr/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&STYLE=normal&TILEMATRIXSET=PM&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}"

// DefaultBasemaps are the IGN Géoplateforme's Plan IGN v2 and
// orthophotographs, the first shown: what `serve` uses without --basemap.
func DefaultBasemaps() []Basemap {
	return []Basemap{
		{Name: "Plan IGN", URL: geopfWMTS + "&LAYER=GEOGRAPHICALGRIDSYSTEMS.PLANIGNV2&FORMAT=image/png", Attribution: IGNAttribution, MaxNativeZoom: 19},
		{Name: "Photographies aériennes", URL: geopfWMTS + "&LAYER=ORTHOIMAGERY.ORTHOPHOTOS&FORMAT=image/jpeg", Attribution: IGNAttribution, MaxNativeZoom: 19},
	}
}

// ErrBasemap is an unusable --basemap value.
var ErrBasemap = errors.New("basemap: want NAME=URL_TEMPLATE with {z}, {x} and {y} (https://…), or none")

var templateVar = regexp.MustCompile(`\{[^{}]*\}`)

// basemapHost is what a basemap's host may be: it goes into the page's
// Content-Security-Policy as is, where a ';' or a quote (which URLs allow
// in a host) would start a directive of its own. A name or an IPv4
// address, or a bracketed IPv6 one, and a port.
var basemapHost = regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`)

// ParseBasemap reads NAME=URL_TEMPLATE. The template is an http(s) URL
// with {z}, {x} and {y} (or {-y}, TMS rows); {r} (retina suffix) is the
// only other variable. Layers of the IGN's hosts get its attribution,
// others their host's name.
func ParseBasemap(value string) (Basemap, error) {
	name, tmpl, ok := strings.Cut(value, "=")
	name, tmpl = strings.TrimSpace(name), strings.TrimSpace(tmpl)
	if !ok || name == "" || tmpl == "" {
		return Basemap{}, fmt.Errorf("%w: %q", ErrBasemap, value)
	}
	u, err := url.Parse(tmpl)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return Basemap{}, fmt.Errorf("%w: %q is not an http(s) URL", ErrBasemap, tmpl)
	}
	if !basemapHost.MatchString(u.Host) {
		return Basemap{}, fmt.Errorf("%w: the host %q of %q is not a name or an address with a port", ErrBasemap, u.Host, tmpl)
	}
	seen := map[string]bool{}
	for _, v := range templateVar.FindAllString(tmpl, -1) {
		switch v {
		case "{z}", "{x}", "{y}", "{-y}", "{r}":
			seen[v] = true
		default:
			return Basemap{}, fmt.Errorf("%w: %s in %q is not a tile variable (a template names one host: no {s})", ErrBasemap, v, tmpl)
		}
	}
	if !seen["{z}"] || !seen["{x}"] || !(seen["{y}"] || seen["{-y}"]) {
		return Basemap{}, fmt.Errorf("%w: %q lacks {z}, {x} or {y}", ErrBasemap, tmpl)
	}
	b := Basemap{Name: name, URL: tmpl, Attribution: u.Hostname(), MaxNativeZoom: 19}
	if h := strings.ToLower(u.Hostname()); h == "geopf.fr" || strings.HasSuffix(h, ".geopf.fr") || h == "ign.fr" || strings.HasSuffix(h, ".ign.fr") {
		b.Attribution = IGNAttribution
	}
	return b, nil
}

// BasemapFlag is `serve --basemap`: repeatable NAME=URL_TEMPLATE, or none.
// Never given, Basemaps is DefaultBasemaps.
type BasemapFlag struct {
	list []Basemap
	none bool
	set  bool
}

func (f *BasemapFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	if f.none {
		return "none"
	}
	names := make([]string, len(f.list))
	for i, b := range f.list {
		names[i] = b.Name + "=" + b.URL
	}
	return strings.Join(names, " ")
}

// Set adds one --basemap value.
func (f *BasemapFlag) Set(value string) error {
	if strings.EqualFold(strings.TrimSpace(value), "none") {
		if len(f.list) > 0 {
			return fmt.Errorf("%w: none with other basemaps", ErrBasemap)
		}
		f.none, f.set = true, true
		return nil
	}
	if f.none {
		return fmt.Errorf("%w: none with other basemaps", ErrBasemap)
	}
	b, err := ParseBasemap(value)
	if err != nil {
		return err
	}
	for _, o := range f.list {
		if o.Name == b.Name {
			return fmt.Errorf("%w: two basemaps named %q", ErrBasemap, b.Name)
		}
	}
	f.list, f.set = append(f.list, b), true
	return nil
}

// Basemaps are the layers the flag names: DefaultBasemaps when it was
// never given, none for `--basemap none`.
func (f *BasemapFlag) Basemaps() []Basemap {
	if !f.set {
		return DefaultBasemaps()
	}
	return f.list
}

// imgSources is the Content-Security-Policy's img-src: the page itself,
// data: (Leaflet's blank tile) and exactly the basemaps' origins.
func imgSources(basemaps []Basemap) string {
	set := map[string]bool{}
	for _, b := range basemaps {
		if u, err := url.Parse(b.URL); err == nil && u.Host != "" {
			set[strings.ToLower(u.Scheme)+"://"+strings.ToLower(u.Host)] = true
		}
	}
	origins := make([]string, 0, len(set))
	for o := range set {
		origins = append(origins, o)
	}
	sort.Strings(origins)
	return strings.Join(append([]string{"'self'", "data:"}, origins...), " ")
}
