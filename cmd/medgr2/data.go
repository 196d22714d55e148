package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/builder"
	"github.com/medgr2/medgr2/pipeline"
)

// defaultDataRoot is the shared real-data folder, relative to the
// repository root.
const defaultDataRoot = "../shared/data"

// runData dispatches `medgr2 data build|stats`.
func runData(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError("usage: medgr2 data build|stats [flags]")
	}
	switch args[0] {
	case "build":
		return runDataBuild(ctx, args[1:], stdout, stderr)
	case "stats":
		return runDataStats(args[1:], stdout, stderr)
	default:
		return usageError(fmt.Sprintf("unknown data command %q (want build or stats)", args[0]))
	}
}

func runDataBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("data build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", defaultDataRoot, "folder whose labelled collections are built when none are named")
	ref := fs.String("reference", "", "real OmniMedVQA QA file for phrasings and distractors (default ROOT/omnimedvqa-text/omnimedvqa_text_sample.json)")
	out := fs.String("out", "out/benchmark", "output folder")
	size := fs.Int("image-size", builder.DefaultImageSize, "side of the square PNG images, pixels")
	seed := fs.Uint64("seed", 1, "random seed (same seed, same bytes)")
	capN := fs.Int("max-per-collection", 0, "cap on images per collection (0: all)")
	hold := fs.String("holdout", "", "comma-separated modalities held out of training in the cross-modality split (default: one chosen by the seed)")
	workers := fs.Int("workers", 2, "parallel image conversions")
	conf := fs.String("config", "", "build the benchmark of this pipeline config's data section instead (the other build flags must be left unset), and write the item sets its report evaluates (eval-*.jsonl)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: medgr2 data build [flags] [COLLECTION_DIR ...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *conf != "" {
		return buildPipelineBenchmark(ctx, fs, *conf, *out, stdout)
	}
	dirs := fs.Args()
	if len(dirs) == 0 {
		found, err := data.FindCollections(*root)
		if err != nil {
			return err
		}
		if len(found) == 0 {
			return usageError(fmt.Sprintf("no labelled collections under %s", *root))
		}
		dirs = found
	}
	if *ref == "" {
		*ref = filepath.Join(*root, "omnimedvqa-text", "omnimedvqa_text_sample.json")
	}
	cfg := builder.Config{
		Collections: dirs, Reference: *ref, OutDir: *out, ImageSize: *size, Seed: *seed,
		MaxPerCollection: *capN, Workers: *workers, Holdout: splitList(*hold),
	}
	m, err := builder.Build(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "built %d items on %d images into %s (holdout: %s)\n",
		m.Stats.Items, m.Stats.Images, *out, strings.Join(m.Holdout, ", "))
	return m.Stats.WriteText(stdout)
}

func runDataStats(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("data stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the card as JSON")
	lenient := fs.Bool("skip-invalid", false, "skip malformed items (reported on stderr) instead of failing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("usage: medgr2 data stats [-json] [-skip-invalid] FILE")
	}
	var opts []data.LoadOption
	if *lenient {
		opts = append(opts, data.SkipInvalid(func(e *data.ItemError) { fmt.Fprintln(stderr, "skipped:", e) }))
	}
	items, err := data.Load(fs.Arg(0), opts...)
	if err != nil {
		return err
	}
	st := data.ComputeStats(items)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return st.WriteText(stdout)
}

// splitList splits a comma-separated flag value, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// buildPipelineBenchmark builds the benchmark a pipeline config names, as
// its data stage does, with the evaluated sets beside it.
func buildPipelineBenchmark(ctx context.Context, fs *flag.FlagSet, config, out string, stdout io.Writer) error {
	var clash []string
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "config" && f.Name != "out" {
			clash = append(clash, "--"+f.Name)
		}
	})
	if len(clash) > 0 || fs.NArg() > 0 {
		return usageError(fmt.Sprintf("data build --config takes the collections and settings from the config; drop %s",
			strings.Join(append(clash, fs.Args()...), " ")))
	}
	cfg, err := pipeline.LoadConfig(config)
	if err != nil {
		return err
	}
	files, err := pipeline.BuildBenchmark(ctx, cfg, out)
	if err != nil {
		return err
	}
	for _, bench := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(stdout, "%s: %s\n", bench, files[bench])
	}
	return nil
}
