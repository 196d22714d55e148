package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/runtime"
)

// buffer is one float32 tensor held twice: the step reads one copy and
// ONNX Runtime writes the update into the other, then they swap roles, so
// parameters and moments never pass through Go between steps.
type buffer struct {
	shape []int64
	data  [2][]float32
	t     [2]*runtime.Tensor
}

func newBuffer(shape []int64, init []float32) (*buffer, error) {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	if init != nil && len(init) != n {
		return nil, fmt.Errorf("%w: %d values for shape %v", ErrShape, len(init), shape)
	}
	b := &buffer{shape: slices.Clone(shape)}
	for i := range 2 {
		b.data[i] = make([]float32, n)
		if init != nil {
			copy(b.data[i], init)
		}
		t, err := runtime.NewTensor(b.shape, b.data[i])
		if err != nil {
			return nil, errors.Join(err, b.close())
		}
		b.t[i] = t
	}
	return b, nil
}

func (b *buffer) close() error {
	if b == nil {
		return nil
	}
	return runtime.CloseAll(b.t[0], b.t[1])
}

// State is what a run trains: the parameters and their AdamW moments as
// ONNX Runtime tensors (double-buffered), the frozen parameters fed
// alongside, and the number of completed updates. Tensor names follow
// graph.TrainParam: "<param>", "<param>.m", "<param>.v".
type State struct {
	// Step is the number of completed updates.
	Step int
	// Params lists the trained parameters in file order.
	Params []string
	cur    int // which copy of each buffer holds the current values
	bufs   map[string]*buffer
	frozen map[string]*runtime.Tensor
	fdata  map[string][]float32
	shapes map[string][]int64
}

// NewState returns a state for the named weights: trained lists the names
// to update (moments start at zero), and every other tensor of weights is
// kept as a frozen input. Each trained name must be in weights.
func NewState(weights map[string]*graph.Tensor, trained []string) (_ *State, err error) {
	s := &State{Params: slices.Clone(trained), bufs: map[string]*buffer{}, frozen: map[string]*runtime.Tensor{},
		fdata: map[string][]float32{}, shapes: map[string][]int64{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()
	isTrained := map[string]bool{}
	for _, name := range trained {
		w, ok := weights[name]
		if !ok {
			return nil, fmt.Errorf("%w: no weight %q to train", ErrConfig, name)
		}
		if w.DType != graph.Float32 {
			return nil, fmt.Errorf("%w: weight %q is %v, the trainer needs float32", ErrConfig, name, w.DType)
		}
		isTrained[name] = true
		s.shapes[name] = slices.Clone(w.Dims)
		if s.bufs[name], err = newBuffer(w.Dims, w.F32); err != nil {
			return nil, err
		}
		for _, sfx := range []string{graph.SuffixM, graph.SuffixV} {
			if s.bufs[name+sfx], err = newBuffer(w.Dims, nil); err != nil {
				return nil, err
			}
		}
	}
	for name, w := range weights {
		if isTrained[name] || w.DType != graph.Float32 {
			continue
		}
		data := slices.Clone(w.F32)
		t, err := runtime.NewTensor(w.Dims, data)
		if err != nil {
			return nil, err
		}
		s.frozen[name], s.fdata[name], s.shapes[name] = t, data, slices.Clone(w.Dims)
	}
	return s, nil
}

// Close releases every tensor. It is nil-safe.
func (s *State) Close() error {
	if s == nil {
		return nil
	}
	var err error
	for _, b := range s.bufs {
		err = errors.Join(err, b.close())
	}
	for _, t := range s.frozen {
		err = errors.Join(err, t.Close())
	}
	s.bufs, s.frozen = nil, nil
	return err
}

// Tensor returns the current value of a trained parameter, a moment
// ("<param>.m", "<param>.v") or a frozen parameter. The slice is the
// state's own memory: copy it before the next step.
func (s *State) Tensor(name string) ([]float32, []int64, bool) {
	if b, ok := s.bufs[name]; ok {
		return b.data[s.cur], b.shape, true
	}
	if d, ok := s.fdata[name]; ok {
		return d, s.shapes[name], true
	}
	return nil, nil, false
}

// Weights returns a copy of every parameter (trained and frozen) as graph
// tensors, for checkpoints and bundles.
func (s *State) Weights() map[string]*graph.Tensor {
	out := map[string]*graph.Tensor{}
	for name := range s.shapes {
		d, shape, _ := s.Tensor(name)
		out[name] = &graph.Tensor{DType: graph.Float32, Dims: slices.Clone(shape), F32: slices.Clone(d)}
	}
	return out
}

// Moments returns a copy of every AdamW moment, named "<param>.m" and
// "<param>.v".
func (s *State) Moments() map[string]*graph.Tensor {
	out := map[string]*graph.Tensor{}
	for _, p := range s.Params {
		for _, sfx := range []string{graph.SuffixM, graph.SuffixV} {
			b := s.bufs[p+sfx]
			out[p+sfx] = &graph.Tensor{DType: graph.Float32, Dims: slices.Clone(b.shape), F32: slices.Clone(b.data[s.cur])}
		}
	}
	return out
}

// load overwrites the current copy of a buffer (resume).
func (s *State) load(name string, t *graph.Tensor) error {
	b, ok := s.bufs[name]
	if !ok {
		if d, ok := s.fdata[name]; ok && t.DType == graph.Float32 && len(t.F32) == len(d) {
			copy(d, t.F32)
			return nil
		}
		return fmt.Errorf("%w: checkpoint tensor %q is not part of this run", ErrCheckpoint, name)
	}
	if t.DType != graph.Float32 || !slices.Equal(t.Dims, b.shape) {
		return fmt.Errorf("%w: checkpoint tensor %q is %v%v, the run has float32%v", ErrCheckpoint, name, t.DType, t.Dims, b.shape)
	}
	copy(b.data[s.cur], t.F32)
	return nil
}

// inputs returns the current parameters, moments and frozen parameters
// that a step of ts reads.
func (s *State) inputs(ts *graph.TrainStep) ([]runtime.NamedTensor, error) {
	var out []runtime.NamedTensor
	for _, p := range ts.Params {
		for _, n := range []string{p.Name, p.M, p.V} {
			b, ok := s.bufs[n]
			if !ok {
				return nil, fmt.Errorf("%w: the train step updates %q, which the state does not train", ErrConfig, n)
			}
			out = append(out, runtime.NamedTensor{Name: n, Tensor: b.t[s.cur]})
		}
	}
	return out, nil
}

// outputs returns the buffers the step writes the updates into.
func (s *State) outputs(ts *graph.TrainStep) []runtime.NamedTensor {
	var out []runtime.NamedTensor
	for _, p := range ts.Params {
		out = append(out,
			runtime.NamedTensor{Name: p.New, Tensor: s.bufs[p.Name].t[1-s.cur]},
			runtime.NamedTensor{Name: p.NewM, Tensor: s.bufs[p.M].t[1-s.cur]},
			runtime.NamedTensor{Name: p.NewV, Tensor: s.bufs[p.V].t[1-s.cur]})
	}
	return out
}

// param returns the tensor to feed for a (trained or frozen) parameter.
func (s *State) param(name string) (*runtime.Tensor, bool) {
	if b, ok := s.bufs[name]; ok {
		return b.t[s.cur], true
	}
	t, ok := s.frozen[name]
	return t, ok
}

// runStep runs a train-step session on ins (the state's parameters and
// moments, the batch, step and learning rate) into the state's other
// buffers, reads the loss, gradient norm and metrics, and commits the
// update: the buffers swap and Step advances. A NaN or infinite loss or
// gradient norm wraps ErrNonFinite and leaves the state as it was.
func (s *State) runStep(ctx context.Context, sess *runtime.Session, ts *graph.TrainStep, ins []runtime.NamedTensor) (StepResult, error) {
	head := append([]string{ts.Loss, ts.GradNorm}, ts.Metrics...)
	outs := s.outputs(ts)
	for _, n := range head {
		outs = append(outs, runtime.NamedTensor{Name: n})
	}
	if err := sess.RunInto(ctx, ins, outs); err != nil {
		return StepResult{}, err
	}
	res, err := readResults(outs[len(outs)-len(head):])
	if err != nil {
		return StepResult{}, err
	}
	if math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0) || math.IsNaN(res.GradNorm) || math.IsInf(res.GradNorm, 0) {
		return StepResult{}, fmt.Errorf("%w: loss %g, grad norm %g (update discarded)", ErrNonFinite, res.Loss, res.GradNorm)
	}
	s.cur = 1 - s.cur
	s.Step++
	return res, nil
}
