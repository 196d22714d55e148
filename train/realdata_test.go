package train

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/builder"
	"github.com/medgr2/medgr2/models"
)

const (
	sharedData    = "../../shared/data"
	testTokenizer = "../models/testdata/vqa_tokenizer.json"
)

var (
	benchOnce  sync.Once
	benchDir   string
	benchError error
)

// benchmarkItems builds (once per test binary) a small OmniMedVQA-style
// benchmark from the real collections in ../shared/data, images 56×56, and
// returns the items of one split.
func benchmarkItems(t testing.TB, split string) []data.Item {
	t.Helper()
	benchOnce.Do(func() {
		dir, err := makeTempDir("medgr2-train-bench")
		if err != nil {
			benchError = err
			return
		}
		benchDir = dir
		_, benchError = builder.Build(context.Background(), builder.Config{
			Collections: []string{filepath.Join(sharedData, "pneumoniamnist"), filepath.Join(sharedData, "busi"),
				filepath.Join(sharedData, "bccd")},
			Reference:        filepath.Join(sharedData, "omnimedvqa-text", "omnimedvqa_text_sample.json"),
			OutDir:           dir,
			ImageSize:        56,
			Seed:             1,
			MaxPerCollection: 50,
		})
	})
	if benchError != nil {
		t.Fatalf("building the benchmark from %s: %v", sharedData, benchError)
	}
	items, err := data.Load(filepath.Join(benchDir, builder.SplitFile(split)))
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// smallArch is the test model for real data: the default layout, narrower.
func smallArch() models.ArchConfig {
	c := models.DefaultConfig(0)
	c.HiddenSize, c.IntermediateSize, c.NumLayers, c.NumHeads, c.NumKVHeads = 64, 128, 2, 4, 2
	c.MRopeSection = []int{2, 3, 3}
	c.Vision.Depth, c.Vision.EmbedDim = 1, 48
	return c
}

// testBundle exports a random bundle of arch with the VQA test tokenizer.
func testBundle(t testing.TB, arch models.ArchConfig, seed uint64) *models.Bundle {
	t.Helper()
	b, err := models.Export(context.Background(), t.TempDir(), arch, models.ExportOptions{Tokenizer: testTokenizer, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openVLM opens a bundle on the CPU.
func openVLM(t testing.TB, dir string) *models.VLM {
	t.Helper()
	v, err := models.Open(context.Background(), dir, models.VLMOptions{Env: openEnv(t), IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}
