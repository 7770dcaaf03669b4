package corpus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// box is one JPEG 2000 box; a superbox holds kids instead of a payload.
type box struct {
	typ     string
	payload []byte
	kids    []box
}

// superBoxes hold other boxes.
var superBoxes = map[string]bool{"jp2h": true, "asoc": true, "res ": true, "uinf": true}

// parseBoxes splits b into boxes (only files written here or by GDAL, so no
// caps are needed).
func parseBoxes(b []byte) ([]box, error) {
	var out []box
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, errors.New("short box header")
		}
		size, hdr := uint64(binary.BigEndian.Uint32(b)), uint64(8)
		typ := string(b[4:8])
		switch size {
		case 0:
			size = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return nil, errors.New("short XLBox")
			}
			size, hdr = binary.BigEndian.Uint64(b[8:]), 16
		}
		if size < hdr || size > uint64(len(b)) {
			return nil, fmt.Errorf("box %q of %d bytes in %d", typ, size, len(b))
		}
		bx := box{typ: typ}
		body := b[hdr:size]
		if superBoxes[typ] {
			kids, err := parseBoxes(body)
			if err != nil {
				return nil, err
			}
			bx.kids = kids
		} else {
			bx.payload = body
		}
		out = append(out, bx)
		b = b[size:]
	}
	return out, nil
}

func (bx box) encode() []byte {
	body := bx.payload
	if superBoxes[bx.typ] {
		body = encodeBoxes(bx.kids)
	}
	return rawBox(bx.typ, body)
}

func encodeBoxes(bs []box) []byte {
	var out []byte
	for _, bx := range bs {
		out = append(out, bx.encode()...)
	}
	return out
}

// rawBox is a box with a 32-bit length.
func rawBox(typ string, body []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	out = append(out, typ...)
	return append(out, body...)
}

func readBoxes(path string) ([]box, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseBoxes(b)
}

func writeBoxes(path string, bs []box) error {
	return os.WriteFile(path, encodeBoxes(bs), 0o644)
}

// isGML says whether an asoc box carries a GMLJP2 document.
func isGML(bx box) bool {
	return bx.typ == "asoc" && len(bx.kids) > 0 && bx.kids[0].typ == "lbl " && bytes.HasPrefix(bx.kids[0].payload, []byte("gml."))
}

// editXML applies edit to every xml box inside bs (recursively).
func editXML(bs []box, edit func([]byte) []byte) []box {
	out := make([]box, len(bs))
	for i, bx := range bs {
		switch {
		case bx.typ == "xml ":
			bx.payload = edit(bx.payload)
		case superBoxes[bx.typ]:
			bx.kids = editXML(bx.kids, edit)
		}
		out[i] = bx
	}
	return out
}

// replaceBetween replaces the text between the first open after anchor
// and the following close.
func replaceBetween(doc []byte, anchor, open, close, with string) ([]byte, bool) {
	a := bytes.Index(doc, []byte(anchor))
	if a < 0 {
		return doc, false
	}
	o := bytes.Index(doc[a:], []byte(open))
	if o < 0 {
		return doc, false
	}
	start := a + o + len(open)
	c := bytes.Index(doc[start:], []byte(close))
	if c < 0 {
		return doc, false
	}
	out := append([]byte{}, doc[:start]...)
	out = append(out, with...)
	return append(out, doc[start+c:]...), true
}

// editGMLOrigin rewrites the RectifiedGrid origin of a GMLJP2 document.
func editGMLOrigin(bs []box, pos string) ([]box, error) {
	done := false
	out := editXML(bs, func(doc []byte) []byte {
		d, ok := replaceBetween(doc, "origin>", "<gml:pos>", "</gml:pos>", pos)
		if !ok {
			d, ok = replaceBetween(doc, "origin>", "<gml:coordinates>", "</gml:coordinates>", pos)
		}
		done = done || ok
		return d
	})
	if !done {
		return nil, errors.New("no GML origin found")
	}
	return out, nil
}

// editGMLOffsets rewrites both offsetVectors of a GMLJP2 document.
func editGMLOffsets(bs []box, first, second string) ([]box, error) {
	done := 0
	out := editXML(bs, func(doc []byte) []byte {
		d, ok := replaceBetween(doc, "<gml:offsetVector", ">", "</gml:offsetVector>", first)
		if !ok {
			return doc
		}
		i := bytes.Index(d, []byte("</gml:offsetVector>")) + len("</gml:offsetVector>")
		rest, ok2 := replaceBetween(d[i:], "<gml:offsetVector", ">", "</gml:offsetVector>", second)
		if ok2 {
			done++
		}
		return append(d[:i:i], rest...)
	})
	if done == 0 {
		return nil, errors.New("no GML offset vectors found")
	}
	return out, nil
}
