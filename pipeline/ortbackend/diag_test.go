//go:build rmdiag || gendiag

package ortbackend

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/medgr2/medgr2/pipeline"
)

// The diagnostics (rmdiag_test.go, gendiag_test.go) run in this folder;
// their relative paths are taken from the repository root.
const repoRoot = "../.."

// fromRoot returns p, a path from the repository root, as an absolute
// path ("" and absolute paths unchanged), so the diagnostics' paths match
// those of items loaded by absolute path.
func fromRoot(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	abs, err := filepath.Abs(filepath.Join(repoRoot, p))
	if err != nil {
		return filepath.Join(repoRoot, p)
	}
	return abs
}

// diagCandidates reads a candidates.jsonl (path from the repository root)
// with every image path taken from the repository root.
func diagCandidates(t *testing.T, path string) []pipeline.Candidate {
	t.Helper()
	cands, err := pipeline.LoadCandidates(fromRoot(path))
	if err != nil {
		t.Fatal(err)
	}
	for i := range cands {
		c := &cands[i]
		c.Item.Root, c.Item.ImagePath = "", fromRoot(c.Item.ImagePath)
	}
	return cands
}

// diagBackend opens a backend for bundles of the default architecture.
func diagBackend(t *testing.T) *Backend {
	t.Helper()
	be, err := New(context.Background(), Options{Arch: pipeline.ModelConfig{HiddenSize: 64, IntermediateSize: 192,
		Layers: 3, VisionWidth: 48, VisionDepth: 1}.Arch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	return be
}
