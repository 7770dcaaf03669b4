package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/openpcrs/pcrs-indexer/indexer"
)

// finalEvent is the one JSON line every scan ends with, on a terminal too,
// so that a log pipeline picks up the outcome and the counts.
type finalEvent struct {
	w                io.Writer
	source, livrable string
}

func (f finalEvent) emit(outcome string, res *indexer.Result, err error) {
	attrs := []any{"outcome", outcome, "source", f.source, "livrable", f.livrable}
	if res != nil {
		r := res.Report
		attrs = append(attrs,
			"counts", r.Counts, "problemsByReason", r.ProblemsByReason, "warningsByKind", r.WarningsByKind,
			"requests", r.IO.Requests, "bytes", r.IO.Bytes, "retries", r.IO.Retries,
			"durationSeconds", r.DurationSeconds)
	}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	slog.New(slog.NewJSONHandler(f.w, nil)).Info("scan finished", attrs...)
}

func printVersion(w io.Writer) int {
	version, revision := indexer.BuildVersion()
	fmt.Fprintf(w, "pcrs-indexer %s (commit %s), GDAL %s\n", version, revision, indexer.GDALVersion())
	return exitOK
}
