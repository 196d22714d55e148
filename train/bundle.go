package train

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/internal/dircopy"
	"github.com/medgr2/medgr2/models"
)

// BundleWeights reads every weight of a bundle.
func BundleWeights(b *models.Bundle) (map[string]*graph.Tensor, error) {
	ws, _, err := graph.ReadWeights(b.WeightsPath())
	if err != nil {
		return nil, fmt.Errorf("train: read weights of %s: %w", b.Dir, err)
	}
	return ws, nil
}

// WriteBundle copies the bundle src to dir and rewrites its safetensors
// file with the trained weights (any weight not in trained keeps src's
// value), in src's layout (order, shapes and offsets), so the copied
// graphs read the new values without being rebuilt. A trained weight of
// another shape, or a layout that changes, is an ErrCheckpoint. The
// result is loaded back (models.Load).
func WriteBundle(ctx context.Context, src *models.Bundle, dir string, trained map[string]*graph.Tensor) (*models.Bundle, error) {
	if err := dircopy.Copy(src.Dir, dir); err != nil {
		return nil, fmt.Errorf("train: copy bundle: %w", err)
	}
	old, layout, err := graph.ReadWeights(src.WeightsPath())
	if err != nil {
		return nil, fmt.Errorf("train: read weights of %s: %w", src.Dir, err)
	}
	out := make([]graph.NamedTensor, len(layout.Specs))
	for i, s := range layout.Specs {
		t, ok := trained[s.Name]
		if !ok {
			t = old[s.Name]
		}
		if t == nil || !graph.Dims(t.Dims...).Equal(graph.Dims(old[s.Name].Dims...)) {
			return nil, fmt.Errorf("%w: weight %q missing or of the wrong shape", ErrCheckpoint, s.Name)
		}
		out[i] = graph.NamedTensor{Name: s.Name, Tensor: t}
	}
	rel, err := filepath.Rel(src.Dir, src.WeightsPath())
	if err != nil {
		return nil, fmt.Errorf("train: weights path: %w", err)
	}
	got, err := graph.WriteWeights(filepath.Join(dir, rel), out)
	if err != nil {
		return nil, fmt.Errorf("train: write weights: %w", err)
	}
	if !bytes.Equal(got.Header, layout.Header) {
		return nil, fmt.Errorf("%w: rewritten weights of %s changed layout", ErrCheckpoint, dir)
	}
	return models.Load(ctx, dir)
}

// RewardBundle exports a reward-role bundle in dir from a VQA bundle: the
// same architecture and weights plus a new scalar head (score.weight drawn
// with the architecture's init std from seed, score.bias 0).
func RewardBundle(ctx context.Context, src *models.Bundle, dir string, seed uint64) (*models.Bundle, error) {
	if src.Manifest.HasRole(models.RoleReward) {
		return WriteBundle(ctx, src, dir, nil)
	}
	ws, err := BundleWeights(src)
	if err != nil {
		return nil, err
	}
	cfg := src.Manifest.Architecture
	var all []graph.NamedTensor
	for _, nt := range models.RandomWeights(models.WeightSpecs(cfg, true), seed, cfg.InitStd) {
		if t, ok := ws[nt.Name]; ok {
			nt.Tensor = t
		}
		all = append(all, nt)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	tmp := filepath.Join(dir, "init.safetensors")
	if _, err := graph.WriteWeights(tmp, all); err != nil {
		return nil, fmt.Errorf("train: reward init weights: %w", err)
	}
	defer os.Remove(tmp)
	b, err := models.Export(ctx, dir, cfg, models.ExportOptions{Name: src.Manifest.Name + "-reward", Version: src.Manifest.Version,
		Roles: []models.Role{models.RoleReward}, Tokenizer: src.TokenizerPath(), Weights: tmp})
	if err != nil {
		return nil, fmt.Errorf("train: export reward bundle: %w", err)
	}
	return b, nil
}
