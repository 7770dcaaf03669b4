package service

import (
	"slices"
	"testing"
)

// TestNeighbours: the tiles around a missing one are named as it is,
// whatever the unit, corner and digit groups; a side on which two
// readings of the name disagree is left out, and a name that does not
// encode its box gives none.
func TestNeighbours(t *testing.T) {
	side := func(ns []neighbour) []string {
		var out []string
		for _, n := range ns {
			s := n.Side + " " + n.Name
			if n.Missing {
				s += " (missing)"
			}
			out = append(out, s)
		}
		return out
	}
	for _, c := range []struct {
		name    string
		path    string
		box     [4]float64
		missing []string
		want    []string
	}{
		{"metres, lower-left", "dalles/0651000_6226400.jp2", [4]float64{651000, 6226400, 651200, 6226600}, []string{"dalles/0651200_6226400.jp2"},
			[]string{"west dalles/0650800_6226400.jp2", "east dalles/0651200_6226400.jp2 (missing)", "south dalles/0651000_6226200.jp2", "north dalles/0651000_6226600.jp2"}},
		{"kilometres, upper-left, a third group", "PCRS-0651-6228-LA93.tif", [4]float64{651000, 6227000, 652000, 6228000}, nil,
			[]string{"west PCRS-0650-6228-LA93.tif", "east PCRS-0652-6228-LA93.tif", "south PCRS-0651-6227-LA93.tif", "north PCRS-0651-6229-LA93.tif"}},
		{"a centimetre off, as from WGS84", "x/PCRS_7002_66004.tif", [4]float64{700199.99, 6600200.01, 700400, 6600399.99}, nil,
			[]string{"west x/PCRS_7000_66004.tif", "east x/PCRS_7004_66004.tif", "south x/PCRS_7002_66002.tif", "north x/PCRS_7002_66006.tif"}},
		// 250 m tiles named in hectometres: flooring and rounding both read
		// the hole's name, and disagree on every neighbour's.
		{"readings disagree", "7000_66000.tif", [4]float64{700000, 6600000, 700250, 6600250}, nil, nil},
		{"no place in the name", "dalles/tile_17.tif", [4]float64{651000, 6226400, 651200, 6226600}, nil, nil},
		{"no digits", "dalles/manquante.tif", [4]float64{651000, 6226400, 651200, 6226600}, nil, nil},
	} {
		missing := map[string]bool{}
		for _, m := range c.missing {
			missing[m] = true
		}
		if got := side(neighbours(c.path, c.box, missing)); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestFrNum: numbers as the page writes them (toLocaleString('fr-FR')).
func TestFrNum(t *testing.T) {
	for _, c := range []struct {
		v        float64
		decimals int
		want     string
	}{{1200, 0, "1\u202f200"}, {-1.25, 2, "-1,25"}, {0.5, 2, "0,5"}, {5.000000000000001, 1, "5"}, {6600400, 1, "6\u202f600\u202f400"}, {999.96, 1, "1\u202f000"}, {12345.678, 2, "12\u202f345,68"},
		{1200.5, 0, "1\u202f201"}, {1.005, 2, "1,01"}, {0.125, 2, "0,13"}, {9.96, 1, "10"}, {0, 2, "0"}, {-0.001, 2, "-0"}} {
		if got := frNum(c.v, c.decimals); got != c.want {
			t.Errorf("frNum(%v, %d) = %q, want %q", c.v, c.decimals, got, c.want)
		}
	}
}
