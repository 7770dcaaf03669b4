package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openpcrs/pcrs-indexer/tilegen"
)

func TestExitCodes(t *testing.T) {
	storageDir := t.TempDir()
	if err := (tilegen.Tile{EPSG: 2154}).Write(filepath.Join(storageDir, "a.tif")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	badAttrs := filepath.Join(t.TempDir(), "attrs.yaml")
	if err := os.WriteFile(badAttrs, []byte("statut: fini\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no command", nil, exitUsage, "Usage"},
		{"unknown command", []string{"index"}, exitUsage, "unknown command"},
		{"no source", []string{"scan"}, exitUsage, "usage"},
		{"bad flag", []string{"scan", "--nope", storageDir}, exitUsage, "not defined"},
		{"bad attributes", []string{"scan", "--attributes", badAttrs, storageDir}, exitUsage, "fini"},
		{"unknown scheme", []string{"scan", "gopher://h/x"}, exitUsage, "gopher"},
		{"missing folder", []string{"scan", "--out", out, filepath.Join(storageDir, "nope")}, exitFailed, "nope"},
		{"scan", []string{"scan", "--out", out, "--name", "essai", storageDir}, exitOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tt.stderr)
			}
		})
	}
	var report struct {
		Counts struct{ Readable int } `json:"counts"`
	}
	raw, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &report); err != nil || report.Counts.Readable != 1 {
		t.Errorf("report: %s", raw)
	}
}

// TestSecretsRedacted: a password in SOURCE never reaches logs or outputs.
func TestSecretsRedacted(t *testing.T) {
	var stdout, stderr bytes.Buffer
	run([]string{"scan", "--out", t.TempDir(), "ftp://user:hunter2@127.0.0.1:1/x"}, &stdout, &stderr)
	if strings.Contains(stdout.String()+stderr.String(), "hunter2") {
		t.Errorf("password leaked:\n%s%s", stdout.String(), stderr.String())
	}
}
