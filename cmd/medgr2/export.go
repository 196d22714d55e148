package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
)

// runExport implements `medgr2 export --out DIR [--config FILE] [--seed N]
// [--weights FILE] --tokenizer FILE [--reward]`, and `medgr2 export --from
// BUNDLE --out DIR`, which writes an existing bundle again as a complete
// folder (its manifest, tokenizer and weights; the files of this medgr2).
func runExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "bundle folder to write (required)")
	cfgPath := fs.String("config", "", "architecture config JSON (models.ArchConfig); default: the small built-in one")
	seed := fs.Uint64("seed", 1, "random-init seed")
	weights := fs.String("weights", "", "safetensors file with every weight (instead of random init)")
	tok := fs.String("tokenizer", "", "tokenizer.json to copy into the bundle (required; sets vocab_size)")
	name := fs.String("name", "medgr2-tiny", "model name in model.json")
	reward := fs.Bool("reward", false, "export a reward model (decoder outputs scores)")
	from := fs.String("from", "", "an existing bundle to write again at --out, with its manifest, tokenizer and weights")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from != "" {
		if *out == "" {
			return usageError("export: --from needs --out")
		}
		return reexport(ctx, *from, *out, stdout)
	}
	if *out == "" || *tok == "" {
		fs.Usage()
		return usageError("export: --out and --tokenizer are required")
	}
	cfg := models.DefaultConfig(0)
	if *cfgPath != "" {
		data, err := os.ReadFile(*cfgPath)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if err := json.Unmarshal(data, &cfg); err != nil {
			return fmt.Errorf("export: config %s: %w", *cfgPath, err)
		}
	}
	opts := models.ExportOptions{Name: *name, Tokenizer: *tok, Seed: *seed, Weights: *weights}
	if *reward {
		opts.Roles = []models.Role{models.RoleReward}
	}
	b, err := models.Export(ctx, *out, cfg, opts)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "wrote %s (%s, roles %v, vocab %d, hidden %d, %d layers)\n",
		b.Dir, b.Manifest.Name, b.Manifest.Roles, b.Manifest.Architecture.VocabSize,
		b.Manifest.Architecture.HiddenSize, b.Manifest.Architecture.NumLayers)
	return err
}

// reexport writes the bundle in from again at out (models.Rewrite).
func reexport(ctx context.Context, from, out string, stdout io.Writer) error {
	src, err := models.Load(ctx, from)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	ws, _, err := graph.ReadWeights(src.WeightsPath())
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	b, err := models.Rewrite(ctx, src, out, ws)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "wrote %s from %s (%s %s, roles %v)\n", b.Dir, from, b.Manifest.Name, b.Manifest.Version, b.Manifest.Roles)
	return err
}
