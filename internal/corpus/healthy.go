package corpus

import (
	"fmt"
	"os"
)

// Healthy writes, into dir, a rows x cols grid of adjoining 200 m tiles in
// Lambert-93 (64 x 64 px at 3.125 m), written by GDAL, alternating JPEG 2000
// (GMLJP2 + GeoJP2) and GeoTIFF (DEFLATE): a delivery every reader must
// publish whole.
func Healthy(dir string, rows, cols int) ([]Case, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	g := &gen{dir: dir}
	for row := 0; row < rows; row++ {
		for col := 0; col < cols; col++ {
			x, y := 650000+float64(col)*200, 6860000-float64(row)*200
			name := fmt.Sprintf("healthy_%d_%d", int(x/1000*10), int(y/1000*10))
			r := defaultRaster("GTiff")
			ext := ".tif"
			r.creation = []string{"COMPRESS=DEFLATE"}
			if (row+col)%2 == 0 {
				r, ext = defaultRaster("JP2OpenJPEG"), ".jp2"
			}
			r.gt = l93(x, y, 3.125)
			g.gdal(name, ext, r, "healthy grid tile")
			if g.err != nil {
				return nil, g.err
			}
		}
	}
	return g.cases, nil
}
