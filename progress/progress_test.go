package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestBar(t *testing.T) {
	var buf bytes.Buffer
	b := &Bar{W: &buf, Label: "tiles"}
	// The total grows while the listing goes on, reads already advancing.
	b.Found(2)
	b.Advance(1)
	b.Found(2)
	for range 3 {
		b.Advance(1)
	}
	b.Finish()
	out := buf.String()
	last := out[strings.LastIndex(out, "\r")+1:]
	if !strings.HasPrefix(last, "tiles [==============================] 4/4") || !strings.HasSuffix(out, "\n") {
		t.Errorf("final line %q", last)
	}
}
