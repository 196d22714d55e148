package train

import (
	"fmt"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
)

// Names of the contrastive pretraining graph's batch input, its train-only
// projection head and its metrics.
const (
	InSSLPixels = models.PixelValues // float32 [2·Pairs·patches, patch dim]: view 1 of every image, then view 2
	// SSLHeadPrefix starts the name of every train-only weight of the
	// pretraining graphs (projection head, reconstruction head). They
	// exist only in the pretraining state; PretrainVision drops them.
	SSLHeadPrefix = "ssl."
	// SSLProjPrefix starts the contrastive projection head's weights.
	SSLProjPrefix = SSLHeadPrefix + "proj."
	// SSLRecPrefix starts the reconstruction head's weights.
	SSLRecPrefix = SSLHeadPrefix + "rec."
	InMIMTarget  = "mim_target" // float32 [images·tokens, merge unit·patch dim]: the unmasked pixel_values of each merged token
	InMIMMask    = "mim_mask"   // float32 [images·tokens, 1]: 1 where the token's patches were masked in the input
	// OutSSLAccuracy is the share of views whose most similar other view
	// is their own pair (the contrastive top-1 accuracy).
	OutSSLAccuracy = "ssl_accuracy"
)

// SSLShape fixes the static shape of a contrastive train step: every view
// is a square image of Patches×Patches patches.
type SSLShape struct {
	Pairs   int // images per step; the graph sees 2·Pairs views
	Patches int // patches per image edge (image edge in pixels / patch size); a multiple of the merge size
}

// sslProjSpecs returns the projection head: hidden → proj (ReLU) → proj.
func sslProjSpecs(cfg models.ArchConfig, proj int) []graph.WeightSpec {
	h, p := int64(cfg.HiddenSize), int64(proj)
	return []graph.WeightSpec{
		{Name: SSLProjPrefix + "0.weight", DType: graph.Float32, Dims: []int64{h, p}},
		{Name: SSLProjPrefix + "0.bias", DType: graph.Float32, Dims: []int64{p}},
		{Name: SSLProjPrefix + "2.weight", DType: graph.Float32, Dims: []int64{p, p}},
		{Name: SSLProjPrefix + "2.bias", DType: graph.Float32, Dims: []int64{p}},
	}
}

// BuildSSLGraph returns the forward graph of the SimCLR objective (NT-Xent,
// Chen et al. 2020) for shape s: the views' patches (InSSLPixels) run
// through the inlined vision encoder (models.BuildVision, weights as
// inputs); each view's image tokens are mean-pooled, projected by a
// two-layer MLP of width proj (train-only weights, SSLProjPrefix), L2
// normalised, and compared by cosine similarity over temperature tau. The
// loss is the mean over all 2·Pairs views of the cross-entropy of picking
// the other view of the same image among the other 2·Pairs−1 views.
// Outputs: "loss" and OutSSLAccuracy.
func BuildSSLGraph(cfg models.ArchConfig, s SSLShape, proj int, tau float64) (*graph.Graph, error) {
	v := cfg.Vision
	switch {
	case s.Pairs < 2:
		return nil, fmt.Errorf("%w: ssl needs at least 2 images per step, got %d", ErrConfig, s.Pairs)
	case s.Patches <= 0 || v.SpatialMergeSize <= 0 || s.Patches%v.SpatialMergeSize != 0:
		return nil, fmt.Errorf("%w: ssl views of %d patches per edge (a positive multiple of the merge size %d)",
			ErrConfig, s.Patches, v.SpatialMergeSize)
	case proj <= 0:
		return nil, fmt.Errorf("%w: ssl projection width %d", ErrConfig, proj)
	case tau <= 0:
		return nil, fmt.Errorf("%w: ssl temperature %g (want > 0)", ErrConfig, tau)
	}
	views := int64(2 * s.Pairs)
	per := int64(s.Patches * s.Patches)
	tokens := per / int64(v.MergeUnit())
	n := views * per
	vis, err := models.BuildVision(cfg, models.BuildOptions{ParamsAsInputs: true, NumPatches: graph.D(n)})
	if err != nil {
		return nil, fmt.Errorf("train: build ssl vision: %w", err)
	}
	g := graph.New("ssl_train")
	px := g.Input(InSSLPixels, graph.Float32, graph.Dims(n, int64(v.PatchDim())))
	grid := make([]int64, 0, 3*views)
	for range views {
		grid = append(grid, 1, int64(s.Patches), int64(s.Patches))
	}
	gridV := g.Const(&graph.Tensor{DType: graph.Int64, Dims: []int64{views, 3}, I64: grid})
	outs, err := inline(g, vis, map[string]*graph.Value{models.PixelValues: px, models.GridTHW: gridV},
		map[string]int64{"num_images": views})
	if err != nil {
		return nil, err
	}
	h := int64(cfg.HiddenSize)
	feat := g.ReduceMean(g.Reshape(outs[models.ImageFeatures], views, tokens, h), []int64{1}, false) // [2P, H]
	z := sslProject(g, cfg, feat, proj)
	sslLoss(g, z, s.Pairs, tau)
	if err := g.Err(); err != nil {
		return nil, fmt.Errorf("train: build ssl graph: %w", err)
	}
	return g, nil
}

// sslProject applies the projection head and L2-normalises each row.
func sslProject(g *graph.Graph, cfg models.ArchConfig, x *graph.Value, proj int) *graph.Value {
	w := map[string]*graph.Value{}
	for _, sp := range sslProjSpecs(cfg, proj) {
		w[sp.Name] = g.Input(sp.Name, sp.DType, graph.Dims(sp.Dims...))
	}
	x = g.Relu(g.Add(g.MatMul(x, w[SSLProjPrefix+"0.weight"]), w[SSLProjPrefix+"0.bias"]))
	x = g.Add(g.MatMul(x, w[SSLProjPrefix+"2.weight"]), w[SSLProjPrefix+"2.bias"])
	norm := g.Sqrt(g.Add(g.ReduceSum(g.Mul(x, x), []int64{1}, true), g.ScalarFloat32(1e-12)))
	return g.Div(x, norm)
}

// sslLoss adds the NT-Xent loss and top-1 accuracy of the normalised
// projections z [2P, D], where rows i and i+P are the two views of image i.
func sslLoss(g *graph.Graph, z *graph.Value, pairs int, tau float64) {
	m := 2 * pairs
	sim := g.Div(g.MatMul(z, g.Transpose(z, 1, 0)), g.ScalarFloat32(float32(tau))) // [2P, 2P]
	self := make([]float32, m*m)
	pos := make([]float32, m*m)
	for i := range m {
		self[i*m+i] = -1e9 // a view is never its own candidate
		pos[i*m+(i+pairs)%m] = 1
	}
	sim = g.Add(sim, g.Const(&graph.Tensor{DType: graph.Float32, Dims: []int64{int64(m), int64(m)}, F32: self}))
	posV := g.Const(&graph.Tensor{DType: graph.Float32, Dims: []int64{int64(m), int64(m)}, F32: pos})
	lp := g.LogSoftmax(sim, 1)
	g.Output(OutLoss, g.Div(g.Neg(g.ReduceSum(g.Mul(lp, posV), nil, false)), g.ScalarFloat32(float32(m))))
	hit := g.ReduceSum(g.Cast(g.Equal(g.ArgMax(sim, 1, true), g.ArgMax(posV, 1, true)), graph.Float32), nil, false)
	g.Output(OutSSLAccuracy, g.Div(hit, g.ScalarFloat32(float32(m))))
}
