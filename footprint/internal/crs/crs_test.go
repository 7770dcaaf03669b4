package crs

import "testing"

func TestAreaOfUse(t *testing.T) {
	for _, tt := range []struct {
		code int
		want bool
	}{{2154, true}, {3946, true}, {4326, true}, {32660, true}, {999999, false}, {0, false}} {
		a, ok := AreaOfUse(tt.code)
		t.Logf("EPSG:%d %v %v", tt.code, a, ok)
		if ok != tt.want {
			t.Errorf("EPSG:%d: found %v, want %v", tt.code, ok, tt.want)
		}
		if ok && (a.South >= a.North || a.West < -180 || a.East > 180) {
			t.Errorf("EPSG:%d: area %+v", tt.code, a)
		}
	}
	// Lambert-93 covers metropolitan France.
	if a, _ := AreaOfUse(2154); a.West > -4 || a.East < 8 || a.South > 42 || a.North < 51 {
		t.Errorf("EPSG:2154 area %+v does not cover France", a)
	}
}
