package train

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/medgr2/medgr2/graph"
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

// WriteBundle writes the bundle src again at dir with the trained weights
// (any weight not in trained keeps src's value): a complete folder
// (models.Rewrite), so its graphs, their .onnx_data and the safetensors
// checkpoint all hold the new values. The result is loaded back.
func WriteBundle(ctx context.Context, src *models.Bundle, dir string, trained map[string]*graph.Tensor) (*models.Bundle, error) {
	ws, err := BundleWeights(src)
	if err != nil {
		return nil, fmt.Errorf("train: read weights of %s: %w", src.Dir, err)
	}
	for name, t := range trained {
		ws[name] = t
	}
	b, err := models.Rewrite(ctx, src, dir, ws)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	return b, nil
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
