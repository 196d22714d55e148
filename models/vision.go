package models

import (
	"math"

	"github.com/medgr2/medgr2/graph"
)

// BuildVision builds vision_encoder.onnx: pixel_values [N, 1176] (rows in
// Qwen2-VL processor order: per image and frame, 2×2 merge windows of
// consecutive patches) and grid_thw [num_images, 3] (int64 t, h, w in
// patches) → image_features [N/4, hidden].
//
// Each patch is embedded by a MatMul with the Conv3d weight reshaped to
// [embed, 1176]; blocks use 2-D rotary positions (row, column) computed
// from grid_thw in the graph and attend only within their own frame; the
// merger LayerNorms, concatenates each 2×2 window and maps it to hidden.
// With opts.NumPatches fixed (train graphs) the output's first dim is
// fixed to NumPatches/4 too.
func BuildVision(cfg ArchConfig, opts BuildOptions) (*graph.Graph, error) {
	m, err := newModelBuilder("vision_encoder", cfg, opts)
	if err != nil {
		return nil, err
	}
	g, v := m.g, cfg.Vision
	e, pd := int64(v.EmbedDim), int64(v.PatchDim())
	nd := opts.dim(opts.NumPatches, "num_patches")
	px := g.Input(PixelValues, graph.Float32, graph.Shape{nd, graph.D(pd)})
	grid := g.Input(GridTHW, graph.Int64, graph.Shape{graph.Sym("num_images"), graph.D(3)})
	w := g.Transpose(g.Reshape(m.w(wPatch), e, pd), 1, 0)
	x := g.MatMul(px, w) // [N, E]
	cos, sin, same := m.visionPositions(v, px, grid, nd)
	for i := range v.Depth {
		x = m.visionBlock(v, i, x, cos, sin, same)
	}
	x = m.layerNorm(x, "visual.merger.ln_q", 1e-6)
	x = g.Reshape(x, -1, e*int64(v.MergeUnit()))
	x = m.gelu(m.linear(x, "visual.merger.mlp.0.weight", "visual.merger.mlp.0.bias"))
	x = m.linear(x, "visual.merger.mlp.2.weight", "visual.merger.mlp.2.bias")
	tokens := graph.Sym("num_image_tokens")
	if nd.Fixed() {
		tokens = graph.D(nd.Size / int64(v.MergeUnit()))
	}
	g.Output(ImageFeatures, x, tokens, graph.D(int64(cfg.HiddenSize)))
	return m.finish()
}

// visionPositions returns the rotary cos/sin [N, head_dim] from each
// patch's (row, column) in its image, and same [N, N] (bool) that is true
// where two patches share an image frame.
func (m *modelBuilder) visionPositions(v VisionConfig, px, grid *graph.Value, nd graph.Dim) (cos, sin, same *graph.Value) {
	g := m.g
	zero, one := g.ScalarInt64(0), g.ScalarInt64(1)
	n := g.Gather(g.ShapeOf(px), zero, 0)
	r := g.Range(zero, n, one, nd) // patch index [N]
	t := g.Gather(grid, g.ScalarInt64(0), 1)
	h := g.Gather(grid, g.ScalarInt64(1), 1)
	w := g.Gather(grid, g.ScalarInt64(2), 1)
	sizes := g.Mul(g.Mul(t, h), w)
	ends := g.CumSum(sizes, 0)
	starts := g.Sub(ends, sizes)
	img := g.ReduceSum(g.Cast(g.GreaterOrEqual(g.Unsqueeze(r, 1), g.Unsqueeze(ends, 0)), graph.Int64), []int64{1}, false)
	local := g.Sub(r, g.Gather(starts, img, 0))
	hI, wI := g.Gather(h, img, 0), g.Gather(w, img, 0)
	ms := g.ScalarInt64(int64(v.SpatialMergeSize))
	unit := g.ScalarInt64(int64(v.MergeUnit()))
	within, win := g.Mod(local, unit), g.Div(local, unit)
	wm, hm := g.Div(wI, ms), g.Div(hI, ms)
	row := g.Add(g.Mul(g.Mod(g.Div(win, wm), hm), ms), g.Div(within, ms))
	col := g.Add(g.Mul(g.Mod(win, wm), ms), g.Mod(within, ms))
	frame := g.Div(local, g.Mul(hI, wI))
	seg := g.Add(g.Mul(img, g.ScalarInt64(1<<20)), frame)
	same = g.Equal(g.Unsqueeze(seg, 1), g.Unsqueeze(seg, 0))

	hd := v.HeadDim()
	inv := g.ConstFloat32s(invFreq(10000, hd/2)...) // [hd/4]
	fr := func(p *graph.Value) *graph.Value { return g.Mul(g.Unsqueeze(g.Cast(p, graph.Float32), 1), inv) }
	rot := g.Concat(-1, fr(row), fr(col)) // [N, hd/2]
	emb := g.Concat(-1, rot, rot)         // [N, hd]
	return g.Cos(emb), g.Sin(emb), same
}

// visionBlock is one pre-LayerNorm ViT block with 2-D RoPE attention and a
// QuickGELU MLP.
func (m *modelBuilder) visionBlock(v VisionConfig, i int, x, cos, sin, same *graph.Value) *graph.Value {
	g := m.g
	e, heads, hd := int64(v.EmbedDim), int64(v.NumHeads), int64(v.HeadDim())
	hn := m.layerNorm(x, blockName(i, "norm1"), 1e-6)
	qkv := m.linear(hn, blockName(i, "attn.qkv.weight"), blockName(i, "attn.qkv.bias"))
	qkv = g.Transpose(g.Reshape(qkv, -1, 3, heads, hd), 1, 2, 0, 3) // [3, heads, N, hd]
	parts := g.Split(qkv, 0, 1, 1, 1)
	q, k, val := g.Squeeze(parts[0], 0), g.Squeeze(parts[1], 0), g.Squeeze(parts[2], 0)
	q, k = m.rope(q, cos, sin, hd), m.rope(k, cos, sin, hd)
	scores := g.Mul(g.MatMul(q, g.Transpose(k, 0, 2, 1)), g.ScalarFloat32(float32(1/math.Sqrt(float64(hd)))))
	scores = g.Where(same, scores, g.ScalarFloat32(maskValue))
	ctx := g.MatMul(g.Softmax(scores, -1), val)       // [heads, N, hd]
	ctx = g.Reshape(g.Transpose(ctx, 1, 0, 2), -1, e) // [N, E]
	x = g.Add(x, m.linear(ctx, blockName(i, "attn.proj.weight"), blockName(i, "attn.proj.bias")))
	hn = m.layerNorm(x, blockName(i, "norm2"), 1e-6)
	hn = m.quickGELU(m.linear(hn, blockName(i, "mlp.fc1.weight"), blockName(i, "mlp.fc1.bias")))
	return g.Add(x, m.linear(hn, blockName(i, "mlp.fc2.weight"), blockName(i, "mlp.fc2.bias")))
}
