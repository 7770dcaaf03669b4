package tilegen

import (
	"fmt"
	"os"
	"path/filepath"
)

// SampleGrid is the demo livrable's layout: 7 x 5 tiles of 200 m with two
// missing (holes in the footprint), and one tile standing alone (an island).
const (
	sampleCols, sampleRows = 7, 5
	sampleX0, sampleY0     = 652000.0, 6232000.0 // Carcassonne, Lambert-93
)

// Sample writes the demo storage below dir: JPEG 2000 tiles with GMLJP2 in
// Lambert-93, a GeoTIFF tile with a world file, metadata beside them, and
// the broken files real deliveries contain. It returns the number of tiles
// written, broken ones included.
func Sample(dir string) (int, error) {
	holes := map[[2]int]bool{{2, 2}: true, {5, 1}: true}
	n := 0
	for c := range sampleCols {
		for r := range sampleRows {
			if holes[[2]int{c, r}] {
				continue
			}
			x, y := sampleX0+float64(c)*200, sampleY0+float64(r+1)*200
			name := fmt.Sprintf("dalles/%04d_%04d.jp2", int(x/100), int(y/100))
			t := Tile{Driver: "JP2OpenJPEG", EPSG: 2154, X: x, Y: y, Creation: []string{"QUALITY=30"}}
			if c == 0 && r == 0 {
				// One GeoTIFF, georeferenced by its world file only.
				name = fmt.Sprintf("dalles/%04d_%04d.TIF", int(x/100), int(y/100))
				t = Tile{NoGeoTransform: true, EPSG: 2154, Creation: []string{"COMPRESS=JPEG", "PHOTOMETRIC=YCBCR", "TILED=YES"}}
				world := fmt.Sprintf("0.5\n0\n0\n-0.5\n%.2f\n%.2f\n", x+0.25, y-0.25)
				if err := WriteFile(filepath.Join(dir, "dalles", fmt.Sprintf("%04d_%04d.tfw", int(x/100), int(y/100))), []byte(world)); err != nil {
					return n, err
				}
			}
			if err := t.Write(filepath.Join(dir, name)); err != nil {
				return n, err
			}
			n++
		}
	}
	// An island, in another folder, with the same file name as a grid tile:
	// tiles are told apart by their path.
	island := Tile{Driver: "JP2OpenJPEG", EPSG: 2154, X: sampleX0 + 9*200, Y: sampleY0 + 3*200, Creation: []string{"QUALITY=30"}}
	if err := island.Write(filepath.Join(dir, "complement", "6520_62322.jp2")); err != nil {
		return n, err
	}
	n++

	broken := map[string][]byte{
		"dalles/vide.jp2":       nil,
		"dalles/erreur-404.jp2": []byte(HTMLErrorPage),
		"dalles/illisible.tif":  []byte("this is not a GeoTIFF, whatever its name says\n"),
	}
	others := map[string][]byte{
		"LISEZMOI.txt":             []byte("Livraison PCRS image - exemple généré par pcrs-indexer\n"),
		"metadonnees/livrable.xml": []byte("<?xml version=\"1.0\"?><livrable/>\n"),
	}
	for _, files := range []map[string][]byte{broken, others} {
		for name, content := range files {
			if err := WriteFile(filepath.Join(dir, name), content); err != nil {
				return n, err
			}
		}
	}
	n += len(broken)
	// A transfer cut short, a tile without georeferencing, one without CRS.
	cut := filepath.Join(dir, "dalles", "coupee.jp2")
	if err := (Tile{Driver: "JP2OpenJPEG", EPSG: 2154, X: sampleX0 + 7*200, Y: sampleY0 + 200, Width: 1000, Creation: []string{"QUALITY=50"}}).Write(cut); err != nil {
		return n, err
	}
	fi, err := os.Stat(cut)
	if err != nil {
		return n, err
	}
	if err := Truncate(cut, fi.Size()/2); err != nil {
		return n, err
	}
	if err := (Tile{NoGeoTransform: true, Creation: []string{"COMPRESS=LZW"}}).Write(filepath.Join(dir, "dalles", "sans-georef.tif")); err != nil {
		return n, err
	}
	if err := (Tile{X: sampleX0, Y: sampleY0, Creation: []string{"COMPRESS=LZW"}}).Write(filepath.Join(dir, "dalles", "sans-crs.tif")); err != nil {
		return n, err
	}
	return n + 3, nil
}
