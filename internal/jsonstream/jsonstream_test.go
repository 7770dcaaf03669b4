package jsonstream

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSkip: each kind of value is skipped whole, the next one read after
// it; a value cut short is an error.
func TestSkip(t *testing.T) {
	for _, v := range []string{`1`, `"s]}"`, `null`, `[]`, `{}`, `[1, [2, {"a": [3]}], "]"]`, `{"a": {"b": [{}]}, "c": "{"}`} {
		dec := json.NewDecoder(strings.NewReader(v + ` "next"`))
		if err := Skip(dec); err != nil {
			t.Errorf("%s: %v", v, err)
			continue
		}
		if tok, err := dec.Token(); err != nil || tok != "next" {
			t.Errorf("after %s: %v %v", v, tok, err)
		}
	}
	if err := Skip(json.NewDecoder(strings.NewReader(`[1, [2`))); err == nil {
		t.Error("a value cut short skipped")
	}
}
