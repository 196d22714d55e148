package models

import (
	"fmt"
	"math"

	"github.com/medgr2/medgr2/graph"
)

// BuildOptions say how a graph is built.
type BuildOptions struct {
	// Weights locates every weight in the bundle's safetensors file; the
	// graph's initializers point into it (ONNX external data). Required
	// unless ParamsAsInputs is set.
	Weights *graph.WeightsLayout
	// ParamsAsInputs declares the weights as graph inputs instead of
	// initializers, as train-step graphs need.
	ParamsAsInputs bool
	// Reward builds the reward decoder (outputs scores, not logits).
	Reward bool
	// Batch, Seq, Past and NumPatches fix dims for static train graphs; the
	// zero value means symbolic ("batch_size", "sequence_length",
	// "past_sequence_length", "num_patches").
	Batch, Seq, Past, NumPatches graph.Dim
}

func (o BuildOptions) dim(d graph.Dim, sym string) graph.Dim {
	if d == (graph.Dim{}) {
		return graph.Sym(sym)
	}
	return d
}

// modelBuilder wraps a graph with weight lookup and the layer helpers.
type modelBuilder struct {
	g     *graph.Graph
	opts  BuildOptions
	specs map[string]graph.WeightSpec
	cache map[string]*graph.Value
	err   error
}

func newModelBuilder(name string, cfg ArchConfig, opts BuildOptions) (*modelBuilder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Weights == nil && !opts.ParamsAsInputs {
		return nil, fmt.Errorf("%w: building %s needs a weights layout", ErrBadWeights, name)
	}
	b := &modelBuilder{g: graph.New(name), opts: opts, specs: map[string]graph.WeightSpec{}, cache: map[string]*graph.Value{}}
	for _, s := range WeightSpecs(cfg, opts.Reward) {
		b.specs[s.Name] = s
	}
	return b, nil
}

// w returns the weight called name (declared once per graph).
func (b *modelBuilder) w(name string) *graph.Value {
	if v, ok := b.cache[name]; ok {
		return v
	}
	spec, ok := b.specs[name]
	if !ok {
		b.setErr(fmt.Errorf("%w: no weight %q in this architecture", ErrBadWeights, name))
		spec = graph.WeightSpec{Name: name, DType: graph.Float32, Dims: []int64{1}}
	}
	var v *graph.Value
	if b.opts.ParamsAsInputs {
		v = b.g.Input(name, spec.DType, graph.Dims(spec.Dims...))
	} else {
		ref, ok := b.opts.Weights.Ref(name)
		if !ok {
			b.setErr(fmt.Errorf("%w: weight %q is not in %s", ErrBadWeights, name, b.opts.Weights.Location))
		}
		v = b.g.ExternalInitializer(name, spec.DType, graph.Dims(spec.Dims...), ref)
	}
	b.cache[name] = v
	return v
}

func (b *modelBuilder) setErr(err error) {
	if b.err == nil {
		b.err = err
	}
}

// finish returns the graph or the first error.
func (b *modelBuilder) finish() (*graph.Graph, error) {
	if b.err != nil {
		return nil, fmt.Errorf("models: build %s: %w", b.g.Name(), b.err)
	}
	if err := b.g.Err(); err != nil {
		return nil, fmt.Errorf("models: build %s: %w", b.g.Name(), err)
	}
	return b.g, nil
}

// linear returns x·Wᵀ (+ bias when bias is non-empty); W is [out, in].
func (b *modelBuilder) linear(x *graph.Value, weight, bias string) *graph.Value {
	y := b.g.MatMul(x, b.g.Transpose(b.w(weight), 1, 0))
	if bias != "" {
		y = b.g.Add(y, b.w(bias))
	}
	return y
}

// rmsNorm returns x / sqrt(mean(x²) + eps) · weight over the last axis.
func (b *modelBuilder) rmsNorm(x *graph.Value, weight string, eps float64) *graph.Value {
	g := b.g
	ms := g.ReduceMean(g.Mul(x, x), []int64{-1}, true)
	inv := g.Reciprocal(g.Sqrt(g.Add(ms, g.ScalarFloat32(float32(eps)))))
	return g.Mul(g.Mul(x, inv), b.w(weight))
}

// layerNorm returns (x - mean) / sqrt(var + eps) · weight + bias over the
// last axis, written with primitive ops so autodiff needs no LayerNorm rule.
func (b *modelBuilder) layerNorm(x *graph.Value, prefix string, eps float64) *graph.Value {
	g := b.g
	mu := g.ReduceMean(x, []int64{-1}, true)
	xc := g.Sub(x, mu)
	v := g.ReduceMean(g.Mul(xc, xc), []int64{-1}, true)
	y := g.Div(xc, g.Sqrt(g.Add(v, g.ScalarFloat32(float32(eps)))))
	return g.Add(g.Mul(y, b.w(prefix+".weight")), b.w(prefix+".bias"))
}

// rotateHalf returns concat(-x[..., d/2:], x[..., :d/2]).
func (b *modelBuilder) rotateHalf(x *graph.Value, d int64) *graph.Value {
	parts := b.g.Split(x, -1, d/2, d/2)
	return b.g.Concat(-1, b.g.Neg(parts[1]), parts[0])
}

// rope applies rotary embedding: x·cos + rotateHalf(x)·sin.
func (b *modelBuilder) rope(x, cos, sin *graph.Value, d int64) *graph.Value {
	return b.g.Add(b.g.Mul(x, cos), b.g.Mul(b.rotateHalf(x, d), sin))
}

// silu returns x·sigmoid(x).
func (b *modelBuilder) silu(x *graph.Value) *graph.Value { return b.g.Mul(x, b.g.Sigmoid(x)) }

// quickGELU returns x·sigmoid(1.702x) (the ViT MLP activation).
func (b *modelBuilder) quickGELU(x *graph.Value) *graph.Value {
	return b.g.Mul(x, b.g.Sigmoid(b.g.Mul(x, b.g.ScalarFloat32(1.702))))
}

// gelu returns the exact GELU 0.5·x·(1 + erf(x/√2)).
func (b *modelBuilder) gelu(x *graph.Value) *graph.Value {
	g := b.g
	e := g.Erf(g.Mul(x, g.ScalarFloat32(float32(1/math.Sqrt2))))
	return g.Mul(g.Mul(x, g.ScalarFloat32(0.5)), g.Add(e, g.ScalarFloat32(1)))
}

// invFreq returns 1/theta^(2i/dim) for i < dim/2.
func invFreq(theta float64, dim int) []float32 {
	out := make([]float32, dim/2)
	for i := range out {
		out[i] = float32(1 / math.Pow(theta, float64(2*i)/float64(dim)))
	}
	return out
}

// maskValue is the score given to masked attention positions.
const maskValue = -1e9
