package train

import (
	"fmt"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
)

// sslRecSpecs returns the reconstruction head: a linear map from a merged
// token (hidden) to its merge unit's patches (MergeUnit·PatchDim values).
func sslRecSpecs(cfg models.ArchConfig) []graph.WeightSpec {
	h, out := int64(cfg.HiddenSize), int64(cfg.Vision.MergeUnit()*cfg.Vision.PatchDim())
	return []graph.WeightSpec{
		{Name: SSLRecPrefix + "weight", DType: graph.Float32, Dims: []int64{h, out}},
		{Name: SSLRecPrefix + "bias", DType: graph.Float32, Dims: []int64{out}},
	}
}

// BuildMIMGraph returns the forward graph of masked image modelling in
// the SimMIM form (Xie et al. 2022; MAE's objective, with the masked
// patches kept in the sequence as zeros because the encoder's graph has a
// fixed patch count): s.Pairs images of s.Patches² patches, some merge
// windows of each zeroed in InSSLPixels (InMIMMask marks them), run
// through the inlined vision encoder; a linear head (train-only,
// SSLRecPrefix) predicts each masked window's original patches
// (InMIMTarget). The loss is the mean squared error over the masked
// windows' values. Outputs: "loss".
func BuildMIMGraph(cfg models.ArchConfig, s SSLShape) (*graph.Graph, error) {
	v := cfg.Vision
	switch {
	case s.Pairs < 1:
		return nil, fmt.Errorf("%w: mim needs at least 1 image per step, got %d", ErrConfig, s.Pairs)
	case s.Patches <= 0 || v.SpatialMergeSize <= 0 || s.Patches%v.SpatialMergeSize != 0:
		return nil, fmt.Errorf("%w: mim views of %d patches per edge (a positive multiple of the merge size %d)",
			ErrConfig, s.Patches, v.SpatialMergeSize)
	}
	images := int64(s.Pairs)
	per := int64(s.Patches * s.Patches)
	n := images * per
	tokens := n / int64(v.MergeUnit())
	vis, err := models.BuildVision(cfg, models.BuildOptions{ParamsAsInputs: true, NumPatches: graph.D(n)})
	if err != nil {
		return nil, fmt.Errorf("train: build mim vision: %w", err)
	}
	g := graph.New("mim_train")
	px := g.Input(InSSLPixels, graph.Float32, graph.Dims(n, int64(v.PatchDim())))
	width := int64(v.MergeUnit() * v.PatchDim())
	target := g.Input(InMIMTarget, graph.Float32, graph.Dims(tokens, width))
	mask := g.Input(InMIMMask, graph.Float32, graph.Dims(tokens, 1))
	grid := make([]int64, 0, 3*images)
	for range images {
		grid = append(grid, 1, int64(s.Patches), int64(s.Patches))
	}
	gridV := g.Const(&graph.Tensor{DType: graph.Int64, Dims: []int64{images, 3}, I64: grid})
	outs, err := inline(g, vis, map[string]*graph.Value{models.PixelValues: px, models.GridTHW: gridV},
		map[string]int64{"num_images": images})
	if err != nil {
		return nil, err
	}
	w := map[string]*graph.Value{}
	for _, sp := range sslRecSpecs(cfg) {
		w[sp.Name] = g.Input(sp.Name, sp.DType, graph.Dims(sp.Dims...))
	}
	pred := g.Add(g.MatMul(outs[models.ImageFeatures], w[SSLRecPrefix+"weight"]), w[SSLRecPrefix+"bias"])
	d := g.Sub(pred, target)
	sq := g.Mul(g.Mul(d, d), mask) // [tokens, width], 0 on visible windows
	denom := g.Mul(g.Add(g.ReduceSum(mask, nil, false), g.ScalarFloat32(1e-6)), g.ScalarFloat32(float32(width)))
	g.Output(OutLoss, g.Div(g.ReduceSum(sq, nil, false), denom))
	if err := g.Err(); err != nil {
		return nil, fmt.Errorf("train: build mim graph: %w", err)
	}
	return g, nil
}
