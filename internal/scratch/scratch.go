// Package scratch makes the temporary files a scan keeps its per-tile
// state in, so that memory does not grow with the tiles.
package scratch

import (
	"fmt"
	"os"
)

// File is a new file in $TMPDIR, unlinked at once: nothing is left
// behind, even when the process is killed. what names its use in errors
// and in the name it briefly had ("pcrs-indexer-" + what + "-…").
func File(what string) (*os.File, error) {
	f, err := os.CreateTemp("", "pcrs-indexer-"+what+"-*")
	if err != nil {
		return nil, fmt.Errorf("creating a temporary file (%s): %w", what, err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("creating a temporary file (%s): %w", what, err)
	}
	return f, nil
}
