package models

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/medgr2/medgr2/graph"
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
}

// Export writes a complete bundle to dir: the weights (random with
// opts.Seed, or copied from opts.Weights) as one safetensors file, the three
// ONNX graphs pointing into it as external data, tokenizer.json and
// model.json. A zero cfg.VocabSize takes the tokenizer's; a smaller one is
// an error. The bundle is loaded back (Load) before Export returns.
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
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path := func(rel string) string { return filepath.Join(dir, filepath.FromSlash(rel)) }
	for _, rel := range []string{m.Files.Weights, m.Files.VisionEncoder, m.Files.EmbedTokens, m.Files.Decoder, m.Files.Tokenizer} {
		if err := os.MkdirAll(filepath.Dir(path(rel)), 0o755); err != nil {
			return nil, fmt.Errorf("models: export: %w", err)
		}
	}
	layout, err := graph.WriteWeights(path(m.Files.Weights), tensors)
	if err != nil {
		return nil, fmt.Errorf("models: export weights: %w", err)
	}
	if err := saveGraphs(ctx, m, layout, path); err != nil {
		return nil, err
	}
	if err := copyFile(opts.Tokenizer, path(m.Files.Tokenizer)); err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("models: export manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), append(js, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("models: export manifest: %w", err)
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

// saveGraphs builds the three graphs against layout and writes them. The
// layout's location is rewritten relative to each graph's folder.
func saveGraphs(ctx context.Context, m *Manifest, layout *graph.WeightsLayout, path func(string) string) error {
	builds := []struct {
		file  string
		build func(ArchConfig, BuildOptions) (*graph.Graph, error)
	}{{m.Files.VisionEncoder, BuildVision}, {m.Files.EmbedTokens, BuildEmbed}, {m.Files.Decoder, BuildDecoder}}
	for _, b := range builds {
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(filepath.Dir(path(b.file)), path(m.Files.Weights))
		if err != nil {
			return fmt.Errorf("models: export %s: %w", b.file, err)
		}
		l := relocate(layout, filepath.ToSlash(rel))
		g, err := b.build(m.Architecture, BuildOptions{Weights: l, Reward: m.HasRole(RoleReward)})
		if err != nil {
			return err
		}
		if err := g.Save(path(b.file)); err != nil {
			return fmt.Errorf("models: export %s: %w", b.file, err)
		}
	}
	return nil
}

func relocate(l *graph.WeightsLayout, location string) *graph.WeightsLayout {
	c := *l
	c.Location = location
	c.Refs = append([]graph.ExternalRef(nil), l.Refs...)
	for i := range c.Refs {
		c.Refs[i].Location = location
	}
	return &c
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMissingFile, err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		return fmt.Errorf("models: export: %w", err)
	}
	return nil
}
