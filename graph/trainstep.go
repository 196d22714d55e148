package graph

import (
	"fmt"
	"strings"
)

// Names of the train-step inputs and outputs BuildTrainStep adds, and the
// suffixes of per-parameter state.
const (
	StepInput      = "step"      // float32 [1]: t, the 1-based number of this update
	LRInput        = "lr"        // float32 [1]: the learning rate of this update
	GradNormOutput = "grad_norm" // float32 [1]: global gradient norm before clipping
	SuffixM        = ".m"        // first-moment input of a parameter
	SuffixV        = ".v"        // second-moment input of a parameter
	SuffixNew      = ".new"      // appended to a parameter or moment name for its updated value
)

// TrainStepConfig says what BuildTrainStep trains and how.
type TrainStepConfig struct {
	// Loss names the forward graph output holding the scalar loss (one
	// element); empty means "loss".
	Loss string
	// Params names the graph inputs to train, in order. Inputs not listed
	// (and initializers) stay fixed.
	Params []string
	// Freeze lists name prefixes: a listed parameter whose name starts with
	// one of them stays fixed (it remains an input, without moments or
	// updates).
	Freeze []string
	// AdamW holds the optimizer settings; the zero value means DefaultAdamW.
	AdamW AdamWConfig
	// NoDecay reports parameters exempt from weight decay; nil means
	// DefaultNoDecay (vectors, norms and biases).
	NoDecay func(name string, shape Shape) bool
	// Grad tunes the autodiff (embedding gradient mode, stop values).
	Grad GradOptions
}

// DefaultNoDecay exempts parameters of rank < 2 and any whose name contains
// "norm" or "bias" (case-insensitive) from weight decay.
func DefaultNoDecay(name string, shape Shape) bool {
	n := strings.ToLower(name)
	return len(shape) < 2 || strings.Contains(n, "norm") || strings.Contains(n, "bias")
}

// TrainParam names the train-step tensors of one trained parameter.
type TrainParam struct {
	Name  string // the parameter input, e.g. "layers.0.mlp.up.weight"
	M, V  string // moment inputs: Name+".m", Name+".v"
	New   string // updated parameter output: Name+".new"
	NewM  string // Name+".m.new"
	NewV  string // Name+".v.new"
	DType DType
	Shape Shape
	Decay bool // whether weight decay applies
}

// TrainStep describes a train-step graph built by BuildTrainStep: what to
// feed and what comes back.
type TrainStep struct {
	Loss     string       // loss output (as in the forward graph)
	GradNorm string       // GradNormOutput
	Metrics  []string     // the forward graph's other outputs, passed through
	Step, LR string       // StepInput, LRInput
	Params   []TrainParam // trained parameters, in TrainStepConfig.Params order
	Frozen   []string     // listed parameters left fixed by a Freeze prefix
	Batch    []string     // every other graph input (batch tensors, loss settings, frozen parameters)
}

// InputNames returns every input of the train-step graph: batch inputs,
// parameters, moments, step and learning rate.
func (ts *TrainStep) InputNames() []string {
	names := append([]string(nil), ts.Batch...)
	for _, p := range ts.Params {
		names = append(names, p.Name, p.M, p.V)
	}
	return append(names, ts.Step, ts.LR)
}

// OutputNames returns the loss, metrics, grad norm and every updated
// parameter and moment.
func (ts *TrainStep) OutputNames() []string {
	names := append([]string{ts.Loss}, ts.Metrics...)
	names = append(names, ts.GradNorm)
	for _, p := range ts.Params {
		names = append(names, p.New, p.NewM, p.NewV)
	}
	return names
}

// BuildTrainStep turns the forward graph g (which must output a scalar
// loss) into one train step for its static (batch, length) bucket, in
// place: it differentiates the loss with respect to the trained
// parameters, clips the gradients by global norm, applies AdamW and adds
// the inputs (moments, StepInput, LRInput) and outputs (GradNormOutput,
// "<param>.new", "<param>.m.new", "<param>.v.new"). Every output g already
// had besides the loss is kept as a metric. The result uses standard ONNX
// ops of the default domain only.
func BuildTrainStep(g *Graph, cfg TrainStepConfig) (*TrainStep, error) {
	if g == nil {
		return nil, fmt.Errorf("%w: nil graph", ErrInvalidArg)
	}
	if err := g.Err(); err != nil {
		return nil, fmt.Errorf("graph: train step: forward graph failed: %w", err)
	}
	if cfg.AdamW == (AdamWConfig{}) {
		cfg.AdamW = DefaultAdamW()
	}
	if err := cfg.AdamW.Validate(); err != nil {
		return nil, err
	}
	ts, loss, err := planTrainStep(g, cfg)
	if err != nil {
		return nil, err
	}
	params := make([]*Value, len(ts.Params))
	for i, p := range ts.Params {
		params[i], _ = g.Lookup(p.Name)
	}
	grads, err := GradWith(g, loss, params, cfg.Grad)
	if err != nil {
		return nil, fmt.Errorf("graph: train step: %w", err)
	}
	norm, err := addOptimizer(g, ts, params, grads, cfg.AdamW)
	if err != nil {
		return nil, err
	}
	g.Output(ts.GradNorm, g.Reshape(g.Cast(norm, Float32), 1))
	if err := g.Err(); err != nil {
		return nil, fmt.Errorf("graph: train step: %w", err)
	}
	if err := CheckDefaultDomain(g); err != nil {
		return nil, fmt.Errorf("graph: train step: %w", err)
	}
	return ts, nil
}

// planTrainStep resolves the loss, parameters, metrics and batch inputs.
func planTrainStep(g *Graph, cfg TrainStepConfig) (*TrainStep, *Value, error) {
	lossName := cfg.Loss
	if lossName == "" {
		lossName = "loss"
	}
	ts := &TrainStep{Loss: lossName, GradNorm: GradNormOutput, Step: StepInput, LR: LRInput}
	var loss *Value
	for _, o := range g.outputs {
		if o.name == lossName {
			loss = o
		} else {
			ts.Metrics = append(ts.Metrics, o.name)
		}
	}
	if loss == nil {
		return nil, nil, fmt.Errorf("%w: train step: graph %q has no output %q", ErrInvalidArg, g.name, lossName)
	}
	noDecay := cfg.NoDecay
	if noDecay == nil {
		noDecay = DefaultNoDecay
	}
	listed := map[string]bool{}
	for _, name := range cfg.Params {
		v, ok := g.Lookup(name)
		switch {
		case !ok || v.kind != KindInput:
			return nil, nil, fmt.Errorf("%w: train step: parameter %q is not a graph input", ErrInvalidArg, name)
		case listed[name]:
			return nil, nil, fmt.Errorf("%w: train step: parameter %q listed twice", ErrInvalidArg, name)
		case !v.dtype.IsFloat():
			return nil, nil, fmt.Errorf("%w: train step: parameter %q has dtype %v", ErrNotDifferential, name, v.dtype)
		}
		listed[name] = true
		if hasAnyPrefix(name, cfg.Freeze) {
			ts.Frozen = append(ts.Frozen, name)
			continue
		}
		ts.Params = append(ts.Params, TrainParam{
			Name: name, M: name + SuffixM, V: name + SuffixV,
			New: name + SuffixNew, NewM: name + SuffixM + SuffixNew, NewV: name + SuffixV + SuffixNew,
			DType: v.dtype, Shape: v.Shape(), Decay: !noDecay(name, v.shape),
		})
	}
	if len(ts.Params) == 0 {
		return nil, nil, fmt.Errorf("%w: train step: no trainable parameters (%d listed, %d frozen)", ErrInvalidArg, len(cfg.Params), len(ts.Frozen))
	}
	for _, in := range g.inputs {
		if !listed[in.name] || hasAnyPrefix(in.name, cfg.Freeze) {
			ts.Batch = append(ts.Batch, in.name)
		}
	}
	return ts, loss, nil
}

func hasAnyPrefix(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if p != "" && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// addOptimizer declares the moment, step and learning-rate inputs and the
// updated-state outputs, and returns the global gradient norm before
// clipping.
func addOptimizer(g *Graph, ts *TrainStep, params, grads []*Value, cfg AdamWConfig) (*Value, error) {
	step := g.Input(ts.Step, Float32, Dims(1))
	lr := g.Input(ts.LR, Float32, Dims(1))
	slots := make([]AdamWSlot, len(params))
	for i, p := range ts.Params {
		slots[i] = AdamWSlot{
			Param: params[i], Grad: grads[i], Decay: p.Decay,
			M: g.Input(p.M, p.DType, p.Shape),
			V: g.Input(p.V, p.DType, p.Shape),
		}
	}
	if err := g.Err(); err != nil {
		return nil, fmt.Errorf("graph: train step: declaring optimizer inputs: %w", err)
	}
	ups, norm, err := ClipAdamW(g, slots, step, lr, cfg)
	if err != nil {
		return nil, fmt.Errorf("graph: train step: %w", err)
	}
	for i, p := range ts.Params {
		g.Output(p.New, ups[i].Param)
		g.Output(p.NewM, ups[i].M)
		g.Output(p.NewV, ups[i].V)
	}
	return norm, g.Err()
}
