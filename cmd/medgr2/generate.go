package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
)

// generateFlags are the flags of `medgr2 generate`.
type generateFlags struct {
	model, image string
	n            int
	meta         metadata
	device       runtime.Device
	dtype        models.DType
	reason       models.ReasonOptions
}

// metadata is the repeatable --metadata k=v flag of `medgr2 generate`.
type metadata struct {
	modality, dataset string
	idPrefix          string // question ids are idPrefix-<index>
}

// metadataKeys names the keys --metadata accepts.
const metadataKeys = "modality, dataset, id"

func (m *metadata) String() string { return "" }

func (m *metadata) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want key=value, got %q", s)
	}
	switch strings.TrimSpace(k) {
	case "modality":
		m.modality = v
	case "dataset":
		m.dataset = v
	case "id":
		m.idPrefix = v
	default:
		return fmt.Errorf("unknown key %q (want %s)", k, metadataKeys)
	}
	return nil
}

func parseGenerateFlags(args []string, stderr io.Writer) (*generateFlags, error) {
	f := &generateFlags{meta: metadata{idPrefix: "gen"}}
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.model, "model", "", "generator bundle folder (default: "+defaultBundles+"/generator, or $"+envModels+"/generator)")
	fs.StringVar(&f.image, "image", "", "image file: PNG, JPEG, DICOM, … (required)")
	fs.IntVar(&f.n, "n", 4, "samples to write (one batched generation)")
	fs.Var(&f.meta, "metadata", "key=value copied into every item: modality (modality_type, also named in the instruction), dataset, id (question_id prefix; default gen); repeatable")
	fs.Var(&f.device, "device", "execution device: auto, cpu, cuda or cuda:N")
	fs.Var(&f.dtype, "dtype", models.DTypeUsage)
	fs.IntVar(&f.reason.MaxNewTokens, "max-new-tokens", 256, "generation budget per sample")
	var temp, topP float64
	fs.Float64Var(&temp, "temperature", 1, "sampling temperature (0 = greedy: every sample the same)")
	fs.Float64Var(&topP, "top-p", 0.95, "nucleus sampling mass (0 = off)")
	fs.Uint64Var(&f.reason.Seed, "seed", 1, "sampling seed; sample i draws with seed+i")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError(err.Error())
	}
	f.reason.Temperature, f.reason.TopP = float32(temp), float32(topP)
	if f.model == "" {
		f.model = defaultBundle("generator")
	}
	switch {
	case fs.NArg() > 0:
		return nil, usageError(fmt.Sprintf("generate: unexpected arguments %q", fs.Args()))
	case f.model == "" || f.image == "":
		return nil, usageError("generate: --image FILE is required, and --model DIR when no default bundle is installed (" + defaultBundles + "/generator)")
	case f.n < 1:
		return nil, usageError(fmt.Sprintf("generate: --n must be at least 1 (got %d)", f.n))
	}
	return f, nil
}

// runGenerate implements `medgr2 generate`: a generator bundle writes --n
// multiple-choice items with reasoning about an image. Each parsed sample
// is one JSON line on stdout: an OmniMedVQA item with its "reasoning", as
// `medgr2 score --items` and `medgr2 eval` read. Samples that do not parse
// or are not valid items are reported on stderr, with the count.
func runGenerate(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	f, err := parseGenerateFlags(args, stderr)
	if err != nil {
		return err
	}
	img, _, err := preprocessing.DecodeFile(f.image, preprocessing.Limits{})
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	path, err := filepath.Abs(f.image) // image_path must not depend on where the items are read from
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	v, err := openBundle(ctx, f.model, f.device, f.dtype, stderr)
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	defer func() { err = errors.Join(err, v.Close()) }()
	px, err := v.ProcessImage(img)
	if err != nil {
		return fmt.Errorf("generate: %s: %w", f.image, err)
	}
	reqs := make([]models.GeneratorRequest, f.n)
	for i := range reqs {
		reqs[i] = models.GeneratorRequest{Pixels: px, Modality: f.meta.modality, Dataset: f.meta.dataset,
			ImagePath: path, QuestionID: fmt.Sprintf("%s-%d", f.meta.idPrefix, i), Seed: uint64(i)}
	}
	samples, err := v.GenerateSamples(ctx, reqs, f.reason)
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	return writeSamples(stdout, stderr, samples)
}

// writeSamples writes each parsed sample that is a valid item
// (data.Item.Validate) as an item line with its reasoning, and each other
// one as a line on stderr, so what it writes can be loaded again.
func writeSamples(stdout, stderr io.Writer, samples []models.Sample) error {
	enc := json.NewEncoder(stdout)
	parsed := 0
	for i, s := range samples {
		if s.Err == nil {
			s.Err = s.Item.Validate()
		}
		if s.Err != nil {
			fmt.Fprintf(stderr, "generate: sample %d left out: %v: %q\n", i, s.Err, s.Text)
			continue
		}
		it, err := withReasoning(s.Item, s.Reasoning)
		if err != nil {
			return err
		}
		if err := enc.Encode(it); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
		parsed++
	}
	_, err := fmt.Fprintf(stderr, "generate: wrote %d of %d samples (the others did not parse or are not valid items)\n", parsed, len(samples))
	return err
}

// reasoningField is the item field that carries a sample's reasoning.
const reasoningField = "reasoning"

// withReasoning returns it with the reasoning in its extra fields.
func withReasoning(it data.Item, reasoning string) (data.Item, error) {
	raw, err := json.Marshal(reasoning)
	if err != nil {
		return it, fmt.Errorf("generate: %w", err)
	}
	extra := make(map[string]json.RawMessage, len(it.Extra)+1)
	for k, v := range it.Extra {
		extra[k] = v
	}
	extra[reasoningField] = raw
	it.Extra = extra
	return it, nil
}
