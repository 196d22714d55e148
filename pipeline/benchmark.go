package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/medgr2/medgr2/data"
)

// EvalFile names the file BuildBenchmark writes for one benchmark of the
// report's table ("test split" → "eval-test-split.jsonl").
func EvalFile(bench string) string {
	return "eval-" + strings.ReplaceAll(bench, " ", "-") + ".jsonl"
}

// BuildBenchmark builds the benchmark of cfg.Data into dir exactly as the
// pipeline's data stage does, and writes beside it the item sets the
// pipeline evaluates (TestLimit and RealLimit samples included), one
// EvalFile per benchmark, so that another evaluation (`make demo`,
// `medgr2 eval`) scores the same items as the report. It returns the
// benchmark → file map.
func BuildBenchmark(ctx context.Context, cfg *Config, dir string) (map[string]string, error) {
	if _, err := buildBenchmarkData(ctx, cfg.Data, dir); err != nil {
		return nil, err
	}
	sets, err := evalSetsFrom(dir, cfg.Data)
	if err != nil {
		return nil, err
	}
	files := map[string]string{}
	for bench, items := range sets {
		path := filepath.Join(dir, EvalFile(bench))
		if err := data.Save(path, relocate(items, dir)); err != nil {
			return nil, fmt.Errorf("pipeline: write %s: %w", bench, err)
		}
		files[bench] = path
	}
	return files, nil
}

// relocate returns items with image paths relative to dir, so a file
// written there finds the images of items loaded from elsewhere.
func relocate(items []data.Item, dir string) []data.Item {
	out := make([]data.Item, len(items))
	absDir, dirErr := filepath.Abs(dir)
	for i, it := range items {
		if f := it.ImageFile(); f != "" && !filepath.IsAbs(it.ImagePath) && dirErr == nil {
			absF, err := filepath.Abs(f)
			if err == nil {
				if rel, err := filepath.Rel(absDir, absF); err == nil {
					it.ImagePath = filepath.ToSlash(rel)
				}
			}
		}
		it.Root = dir
		out[i] = it
	}
	return out
}
