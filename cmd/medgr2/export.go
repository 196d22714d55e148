package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
)

// runExport implements `medgr2 export --out DIR [--config FILE] [--seed N]
// [--weights FILE] --tokenizer FILE [--reward] [--dtype fp16,q4f16]`, and
// `medgr2 export --from BUNDLE --out DIR [--dtype …]`, which writes an
// existing bundle again as a complete folder (its manifest, tokenizer and
// weights; the files of this medgr2). --dtype adds the float16 and 4-bit
// variants of the graphs beside the float32 ones (models.ExportVariants).
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
	dtypeList := fs.String("dtype", "", "comma-separated dtype variants to write beside the fp32 graphs: fp16, q4, q4f16 (default none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dtypes, err := parseDTypes(*dtypeList)
	if err != nil {
		return usageError("export: " + err.Error())
	}
	if *from != "" {
		if *out == "" {
			return usageError("export: --from needs --out")
		}
		return reexport(ctx, *from, *out, dtypes, stdout)
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
	opts := models.ExportOptions{Name: *name, Tokenizer: *tok, Seed: *seed, Weights: *weights, DTypes: dtypes}
	if *reward {
		opts.Roles = []models.Role{models.RoleReward}
	}
	b, err := models.Export(ctx, *out, cfg, opts)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "wrote %s (%s, roles %v, vocab %d, hidden %d, %d layers, dtypes fp32%s)\n",
		b.Dir, b.Manifest.Name, b.Manifest.Roles, b.Manifest.Architecture.VocabSize,
		b.Manifest.Architecture.HiddenSize, b.Manifest.Architecture.NumLayers, extraDTypes(dtypes))
	return err
}

// reexport writes the bundle in from again at out (models.Rewrite).
func reexport(ctx context.Context, from, out string, dtypes []models.DType, stdout io.Writer) error {
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
	if err := models.WriteVariants(ctx, b, dtypes); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "wrote %s from %s (%s %s, roles %v, dtypes fp32%s)\n", b.Dir, from, b.Manifest.Name, b.Manifest.Version, b.Manifest.Roles, extraDTypes(dtypes))
	return err
}

// parseDTypes reads export's --dtype list: fp16, q4 and q4f16 (fp32 is
// always written and may be named).
func parseDTypes(list string) ([]models.DType, error) {
	var out []models.DType
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		d, err := models.ParseDType(s)
		if err != nil {
			return nil, err
		}
		switch d {
		case models.DTypeFP32:
		case models.DTypeFP16, models.DTypeQ4, models.DTypeQ4F16:
			out = append(out, d)
		default:
			return nil, fmt.Errorf("--dtype %s: export writes fp16, q4 and q4f16 variants", d)
		}
	}
	return out, nil
}

// extraDTypes formats the variants written besides fp32 (", fp16, q4f16").
func extraDTypes(ds []models.DType) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(", " + string(d))
	}
	return b.String()
}
