package models

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/internal/atomicfile"
)

// ExportOptions say what Export writes besides the architecture.
type ExportOptions struct {
	Name      string // manifest name; default "medgr2-tiny"
	Version   string // manifest version; default "0.1.0"
	Roles     []Role // default [vqa, generator]
	Tokenizer string // path of the tokenizer.json to copy into the bundle (required)
	Seed      uint64 // random-init seed when Weights is empty
	Weights   string // optional safetensors file with every weight of the architecture
	Files     Files  // file names; zero value means DefaultFiles()
	// DTypes lists dtype variants written beside the float32 graphs
	// (ExportVariants: fp16, q4, q4f16); nil writes none.
	DTypes []DType
	// MaxPixels, when above 0, is the image processor's max_pixels (and
	// its min_pixels, when the default is larger): the most pixels an
	// image keeps after its resize, which should be the resolution the
	// bundle is trained at, so that it serves images as it saw them. 0
	// keeps Qwen2-VL's default (28·28·256).
	MaxPixels int
}

// Export writes a complete bundle to dir: a Hugging Face model folder
// (config.json, generation_config.json, preprocessor_config.json,
// tokenizer.json, tokenizer_config.json with the chat template), the three
// ONNX graphs in the onnx-community layout, each with its weights in
// <graph>.onnx_data (as transformers.js loads them), the weights again as
// one safetensors file (the training checkpoint) and model.json (medgr2's
// roles and formats). Weights are random with opts.Seed, or copied from
// opts.Weights. A zero cfg.VocabSize takes the tokenizer's; a smaller one
// is an error. The bundle is loaded back (Load) before Export returns.
func Export(ctx context.Context, dir string, cfg ArchConfig, opts ExportOptions) (*Bundle, error) {
	m, err := exportManifest(cfg, &opts)
	if err != nil {
		return nil, err
	}
	specs := WeightSpecs(m.Architecture, m.HasRole(RoleReward))
	tensors := RandomWeights(specs, opts.Seed, m.Architecture.InitStd)
	if opts.Weights != "" {
		if tensors, err = givenWeights(specs, opts.Weights); err != nil {
			return nil, err
		}
	} else {
		m.Seed = &opts.Seed
	}
	b, err := writeBundle(ctx, dir, m, opts.Tokenizer, tensors)
	if err != nil || len(opts.DTypes) == 0 {
		return b, err
	}
	return b, WriteVariants(ctx, b, opts.DTypes)
}

// WriteVariants writes the dtype variants dtypes of bundle b's graphs
// beside them (ExportVariants) and loads the bundle with each one, so a
// variant that does not validate is an error here.
func WriteVariants(ctx context.Context, b *Bundle, dtypes []DType) error {
	if err := ExportVariants(ctx, b, dtypes); err != nil {
		return err
	}
	for _, d := range dtypes {
		if _, err := LoadDType(ctx, b.Dir, d); err != nil {
			return fmt.Errorf("models: export %s: %w", d, err)
		}
	}
	return nil
}

// Rewrite writes the bundle src again at dir with new weights (trained
// ones): every file Export writes, from src's manifest and tokenizer, so
// the graphs, their .onnx_data and the safetensors checkpoint agree.
// weights must hold every weight of src's architecture with its shape;
// names not in the architecture are ignored. dir must differ from src.Dir.
func Rewrite(ctx context.Context, src *Bundle, dir string, weights map[string]*graph.Tensor) (*Bundle, error) {
	if same, err := sameDir(src.Dir, dir); err != nil || same {
		return nil, fmt.Errorf("%w: rewrite %s onto itself (%v)", ErrMissingFile, dir, err)
	}
	m := *src.Manifest
	specs := WeightSpecs(m.Architecture, m.HasRole(RoleReward))
	tensors := make([]graph.NamedTensor, len(specs))
	for i, s := range specs {
		t, ok := weights[s.Name]
		if !ok || t.DType != s.DType || !graph.Dims(t.Dims...).Equal(graph.Dims(s.Dims...)) {
			return nil, fmt.Errorf("%w: rewrite %s: weight %q missing or not %v%v", ErrBadWeights, dir, s.Name, s.DType, s.Dims)
		}
		tensors[i] = graph.NamedTensor{Name: s.Name, Tensor: t}
	}
	return writeBundle(ctx, dir, &m, src.TokenizerPath(), tensors)
}

func sameDir(a, b string) (bool, error) {
	x, err := filepath.Abs(a)
	if err != nil {
		return false, err
	}
	y, err := filepath.Abs(b)
	return x == y, err
}

// writeBundle writes every file of a bundle with manifest m into dir and
// loads it back.
func writeBundle(ctx context.Context, dir string, m *Manifest, tokenizer string, tensors []graph.NamedTensor) (*Bundle, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path := func(rel string) string { return filepath.Join(dir, filepath.FromSlash(rel)) }
	for _, rel := range []string{m.Files.Weights, m.Files.VisionEncoder, m.Files.EmbedTokens, m.Files.Decoder, m.Files.Tokenizer} {
		if err := os.MkdirAll(filepath.Dir(path(rel)), 0o755); err != nil {
			return nil, fmt.Errorf("models: export: %w", err)
		}
	}
	if _, err := graph.WriteWeights(path(m.Files.Weights), tensors); err != nil {
		return nil, fmt.Errorf("models: export weights: %w", err)
	}
	if err := saveGraphs(ctx, m, tensors, path); err != nil {
		return nil, err
	}
	if err := copyFile(tokenizer, path(m.Files.Tokenizer)); err != nil {
		return nil, err
	}
	if err := writeHFFiles(dir, m); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(dir, ManifestName), m); err != nil {
		return nil, err
	}
	return Load(ctx, dir)
}

func exportManifest(cfg ArchConfig, opts *ExportOptions) (*Manifest, error) {
	if opts.Tokenizer == "" {
		return nil, fmt.Errorf("%w: export needs a tokenizer.json", ErrMissingFile)
	}
	tok, err := ReadTokenizerInfo(opts.Tokenizer)
	if err != nil {
		return nil, err
	}
	if cfg.VocabSize == 0 {
		cfg.VocabSize = tok.VocabSize
	}
	if cfg.VocabSize < tok.VocabSize {
		return nil, fmt.Errorf("%w: vocab_size %d is smaller than the tokenizer's %d", ErrBadConfig, cfg.VocabSize, tok.VocabSize)
	}
	st, err := tok.SpecialTokens()
	if err != nil {
		return nil, err
	}
	m := &Manifest{
		Name: opts.Name, Version: opts.Version, Roles: opts.Roles, Architecture: cfg, SpecialTokens: st,
		Prompt:         PromptFormat{Template: "chatml", System: "You are a helpful medical imaging assistant.", AnswerFormat: "think_answer"},
		ImageProcessor: DefaultImageProcessor(cfg.Vision), Files: opts.Files, Source: "medgr2 export",
	}
	if opts.MaxPixels < 0 {
		return nil, fmt.Errorf("%w: max_pixels %d < 0", ErrBadConfig, opts.MaxPixels)
	}
	if opts.MaxPixels > 0 {
		ip := &m.ImageProcessor
		ip.MaxPixels, ip.MinPixels = opts.MaxPixels, min(ip.MinPixels, opts.MaxPixels)
	}
	if m.Name == "" {
		m.Name = "medgr2-tiny"
	}
	if m.Version == "" {
		m.Version = "0.1.0"
	}
	if len(m.Roles) == 0 {
		m.Roles = []Role{RoleVQA, RoleGenerator}
	}
	if m.Files == (Files{}) {
		m.Files = DefaultFiles()
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// givenWeights reads path and returns the tensors of specs in order; every
// weight must be present with the right dtype and shape.
func givenWeights(specs []graph.WeightSpec, path string) ([]graph.NamedTensor, error) {
	ts, _, err := graph.ReadWeights(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadWeights, err)
	}
	out := make([]graph.NamedTensor, len(specs))
	for i, s := range specs {
		t, ok := ts[s.Name]
		if !ok {
			return nil, fmt.Errorf("%w: %s has no %q", ErrBadWeights, path, s.Name)
		}
		if t.DType != s.DType || !graph.Dims(t.Dims...).Equal(graph.Dims(s.Dims...)) {
			return nil, fmt.Errorf("%w: %s: %q is %v%v, want %v%v", ErrBadWeights, path, s.Name, t.DType, t.Dims, s.DType, s.Dims)
		}
		out[i] = graph.NamedTensor{Name: s.Name, Tensor: t}
	}
	return out, nil
}

// saveGraphs builds the three graphs and writes each with its weights in
// <graph>.onnx_data beside it: the tensors the graph reads, in the order it
// declares them, each at a 64-byte aligned offset.
func saveGraphs(ctx context.Context, m *Manifest, tensors []graph.NamedTensor, path func(string) string) error {
	byName := make(map[string]*graph.Tensor, len(tensors))
	for _, t := range tensors {
		byName[t.Name] = t.Tensor
	}
	builds := []struct {
		file  string
		build func(ArchConfig, BuildOptions) (*graph.Graph, error)
	}{{m.Files.VisionEncoder, BuildVision}, {m.Files.EmbedTokens, BuildEmbed}, {m.Files.Decoder, BuildDecoder}}
	reward := m.HasRole(RoleReward)
	for _, b := range builds {
		if err := ctx.Err(); err != nil {
			return err
		}
		probe, err := b.build(m.Architecture, BuildOptions{ParamsAsInputs: true, Reward: reward})
		if err != nil {
			return err
		}
		data := filepath.Base(b.file) + "_data"
		layout, blob, err := graphData(data, probe, byName)
		if err != nil {
			return fmt.Errorf("models: export %s: %w", b.file, err)
		}
		if err := atomicfile.Write(filepath.Join(filepath.Dir(path(b.file)), data), blob); err != nil {
			return err
		}
		g, err := b.build(m.Architecture, BuildOptions{Weights: layout, Reward: reward})
		if err != nil {
			return err
		}
		if err := g.Save(path(b.file)); err != nil {
			return fmt.Errorf("models: export %s: %w", b.file, err)
		}
	}
	return nil
}

// dataAlign is the alignment of each tensor in a .onnx_data file.
const dataAlign = 64

// graphData lays out the weights probe declares as inputs (built with
// ParamsAsInputs) in one raw external-data file called location, and
// returns the layout and the file's bytes.
func graphData(location string, probe *graph.Graph, byName map[string]*graph.Tensor) (*graph.WeightsLayout, []byte, error) {
	l := &graph.WeightsLayout{Location: location}
	var blob []byte
	for _, in := range probe.Inputs() {
		t, ok := byName[in.Name()]
		if !ok {
			continue // a runtime input, not a weight
		}
		for len(blob)%dataAlign != 0 {
			blob = append(blob, 0)
		}
		b := t.Bytes()
		l.Specs = append(l.Specs, graph.WeightSpec{Name: in.Name(), DType: t.DType, Dims: t.Dims})
		l.Refs = append(l.Refs, graph.ExternalRef{Location: location, Offset: int64(len(blob)), Length: int64(len(b))})
		blob = append(blob, b...)
	}
	if len(l.Specs) == 0 {
		return nil, nil, fmt.Errorf("%w: the graph reads no weight", ErrBadWeights)
	}
	return l, blob, nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMissingFile, err)
	}
	return atomicfile.Write(dst, data)
}
