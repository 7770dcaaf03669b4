// Package jsonstream reads large JSON documents a piece at a time: a
// report lists every problem tile of a delivery, hundreds of MB when it is
// broken, and readers after a few of its fields must not hold the rest.
package jsonstream

import "encoding/json"

// Skip reads past the next value of dec, an array's elements or an
// object's members one at a time, so that a list of a million problems is
// never held whole, and each without building its value: Decode checks
// an element into ignored, which copies and converts nothing (reading
// every token instead allocated 15 bytes per byte of report).
func Skip(dec *json.Decoder) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := t.(json.Delim)
	if !ok {
		return nil
	}
	for dec.More() {
		if d == '{' {
			if _, err := dec.Token(); err != nil {
				return err
			}
		}
		var v ignored
		if err := dec.Decode(&v); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}

// ignored is a value Decode checks but does not copy nor convert.
type ignored struct{}

func (*ignored) UnmarshalJSON([]byte) error { return nil }
