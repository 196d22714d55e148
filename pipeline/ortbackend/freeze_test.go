package ortbackend

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/pipeline"
)

// bundleWeights reads every weight of the bundle at dir.
func bundleWeights(t *testing.T, dir string) map[string]*graph.Tensor {
	t.Helper()
	b, err := models.Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := graph.ReadWeights(b.WeightsPath())
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// TestSFTFreezes checks that the pipeline's training keeps the parameters
// its TrainOptions.Freeze names fixed and updates the rest.
func TestSFTFreezes(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	ex := realExamples(t, 4)
	base := setup(t, b, pipeline.RoleVQA, ex)
	freeze := []string{"model.embed_tokens.", "model.layers.0.mlp."}
	out := filepath.Join(t.TempDir(), "trained")
	if _, err := b.SFT(ctx, base, out, pipeline.RoleVQA, ex, pipeline.TrainOptions{Epochs: 2, BatchSize: 4,
		LearningRate: 5e-3, Seed: 1, Freeze: freeze}); err != nil {
		t.Fatal(err)
	}
	before, after := bundleWeights(t, base), bundleWeights(t, out)
	changed := map[bool]int{}
	for name, w := range before {
		isFrozen := strings.HasPrefix(name, freeze[0]) || strings.HasPrefix(name, freeze[1])
		if !slices.Equal(w.F32, after[name].F32) {
			changed[isFrozen]++
		}
	}
	if changed[true] > 0 {
		t.Errorf("%d frozen weights changed", changed[true])
	}
	if changed[false] == 0 {
		t.Error("no trained weight changed")
	}
}
