package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/medgr2/medgr2/data"
)

// TestBuildBenchmarkMatchesEvalSets checks that the files BuildBenchmark
// writes hold the items the pipeline evaluates, and that their images
// resolve from the new location (the real items live elsewhere).
func TestBuildBenchmarkMatchesEvalSets(t *testing.T) {
	cfg := testConfig(t)
	cfg.Data.TestLimit = 7
	dir := t.TempDir()
	files, err := BuildBenchmark(context.Background(), cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	want, err := evalSetsFrom(dir, cfg.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want) || len(want) != 3 {
		t.Fatalf("wrote %v, want the %d benchmarks", files, len(want))
	}
	for bench, items := range want {
		got, err := data.Load(files[bench])
		if err != nil {
			t.Fatalf("%s: %v", bench, err)
		}
		ids := func(its []data.Item) []string {
			var out []string
			for _, it := range its {
				out = append(out, it.QuestionID)
			}
			return out
		}
		if !slices.Equal(ids(got), ids(items)) {
			t.Errorf("%s: ids differ from the pipeline's set", bench)
		}
		if bench != BenchReal && len(got) != 7 {
			t.Errorf("%s: %d items, want the test limit 7", bench, len(got))
		}
		for _, it := range got {
			if _, err := os.Stat(it.ImageFile()); err != nil {
				t.Fatalf("%s: image of %s: %v", bench, it.QuestionID, err)
			}
		}
	}
	if filepath.Base(files[BenchTest]) != "eval-test-split.jsonl" {
		t.Errorf("test split file %s", files[BenchTest])
	}
}
