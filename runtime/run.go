package runtime

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"

	ort "github.com/yalue/onnxruntime_go"
)

// Run feeds the named inputs (every runtime input of the model, each once)
// and returns the requested outputs in the order of outputNames; the caller
// owns and closes them. Inputs are checked against the model first (name,
// element type, rank and fixed dims): a mismatch is an *IOError naming the
// input, with the expected and actual shape.
//
// Cancellation: ctx is checked before the run starts, and a cancellation
// during the run sets ORT's terminate flag (RunOptions.Terminate), which ORT
// polls between operators: a run stops at the next operator boundary, not
// inside a long kernel. The error then wraps ctx.Err().
//
// ORT computes every output of the model; outputs not requested are
// released right after the run. See RunInto for reusing output buffers.
func (s *Session) Run(ctx context.Context, inputs []NamedTensor, outputNames []string) ([]*Tensor, error) {
	outs := make([]NamedTensor, len(outputNames))
	for i, n := range outputNames {
		outs[i].Name = n
	}
	if err := s.RunInto(ctx, inputs, outs); err != nil {
		return nil, err
	}
	res := make([]*Tensor, len(outs))
	for i, o := range outs {
		res[i] = o.Tensor
	}
	return res, nil
}

// RunInto is Run with caller-chosen output buffers: an output whose Tensor
// is non-nil is written in place (its type and shape must be exactly what the
// model produces), and one whose Tensor is nil is set to a new tensor owned
// by the caller. On error no tensor is created and outputs is left unchanged.
//
// In a decode loop, feed the previous step's present.* tensors as this
// step's past_key_values.* inputs as they are (no copy), then close them.
func (s *Session) RunInto(ctx context.Context, inputs []NamedTensor, outputs []NamedTensor) (err error) {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("runtime: run %s: %w", s.name, err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.sess == nil {
		return fmt.Errorf("%w: session %s", ErrClosed, s.name)
	}
	in, err := s.bindInputs(inputs)
	if err != nil {
		return err
	}
	out, want, err := s.bindOutputs(outputs)
	if err != nil {
		return err
	}
	// ours marks the output values this call created; they are released
	// unless handed to the caller.
	ours := make([]bool, len(out))
	for i, v := range out {
		ours[i] = v == nil || want[i] < 0 || outputs[want[i]].Tensor == nil
	}
	defer func() {
		for i, v := range out {
			if ours[i] && !isNil(v) {
				err = errors.Join(err, v.Destroy())
			}
		}
	}()
	if err := s.prepareOutputs(out); err != nil {
		return err
	}
	if err := s.exec(ctx, in, out); err != nil {
		return err
	}
	created := make([]*Tensor, len(outputs))
	for i, v := range out {
		if j := want[i]; j >= 0 && outputs[j].Tensor == nil {
			t, werr := wrapValue(v)
			ours[i] = false // wrapValue owns v now, even on error
			if werr != nil {
				return errors.Join(fmt.Errorf("runtime: run %s: output %q: %w", s.name, s.outputs[i].Name, werr), CloseAll(created...))
			}
			created[j] = t
		}
	}
	for j, t := range created {
		if t != nil {
			outputs[j].Tensor = t
		}
	}
	return nil
}

// bindInputs orders the caller's inputs as the session declares them and
// checks each against the model.
func (s *Session) bindInputs(inputs []NamedTensor) ([]ort.Value, error) {
	vals := make([]ort.Value, len(s.inputs))
	var errs []error
	for _, nt := range inputs {
		i, ok := s.inIdx[nt.Name]
		switch {
		case !ok:
			errs = append(errs, s.ioErr(nt.Name, "not an input of the model (inputs: %v)", names(s.inputs)))
			continue
		case vals[i] != nil:
			errs = append(errs, s.ioErr(nt.Name, "input given twice"))
			continue
		}
		v, err := nt.Tensor.value()
		if err != nil {
			errs = append(errs, fmt.Errorf("input %q: %w", nt.Name, err))
			continue
		}
		if err := s.checkTensor(s.inputs[i], nt.Tensor); err != nil {
			errs = append(errs, err)
			continue
		}
		vals[i] = v
	}
	for i, v := range vals {
		if v == nil && !hasName(inputs, s.inputs[i].Name) {
			errs = append(errs, s.ioErr(s.inputs[i].Name, "missing input (model shape %v, %s)", s.inputs[i].Shape, s.inputs[i].DType))
		}
	}
	return vals, errors.Join(errs...)
}

// bindOutputs returns one value slot per declared output (caller buffers
// filled in) and, per slot, the index in outputs that asked for it or -1.
func (s *Session) bindOutputs(outputs []NamedTensor) ([]ort.Value, []int, error) {
	vals := make([]ort.Value, len(s.outputs))
	want := make([]int, len(s.outputs))
	for i := range want {
		want[i] = -1
	}
	var errs []error
	for j, nt := range outputs {
		i, ok := s.outIdx[nt.Name]
		switch {
		case !ok:
			errs = append(errs, s.ioErr(nt.Name, "not an output of the model (outputs: %v)", names(s.outputs)))
			continue
		case want[i] >= 0:
			errs = append(errs, s.ioErr(nt.Name, "output requested twice"))
			continue
		}
		want[i] = j
		if nt.Tensor == nil {
			continue
		}
		v, err := nt.Tensor.value()
		if err == nil {
			err = s.checkTensor(s.outputs[i], nt.Tensor)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("output buffer %q: %w", nt.Name, err))
			continue
		}
		vals[i] = v
	}
	return vals, want, errors.Join(errs...)
}

func hasName(nts []NamedTensor, name string) bool {
	for _, nt := range nts {
		if nt.Name == name {
			return true
		}
	}
	return false
}

// checkTensor compares a concrete tensor with a declared input or output.
func (s *Session) checkTensor(decl IOInfo, t *Tensor) error {
	if decl.DType != Undefined && decl.DType != t.dtype {
		return s.ioErr(decl.Name, "element type %s, model expects %s", t.dtype, decl.DType)
	}
	if !shapesCompatible(decl.Shape, t.shape, false) {
		return s.ioErr(decl.Name, "shape %v does not match model shape %v", t.shape, decl.Shape)
	}
	return nil
}

// prepareOutputs allocates outputs that onnxruntime_go v1.27 cannot adopt
// from ORT: scalars (it rejects rank 0) and float16/bfloat16 tensors (it
// copies one byte per element). Such a 16-bit output with symbolic dims
// needs a caller buffer (RunInto), since its size is unknown before the run.
func (s *Session) prepareOutputs(out []ort.Value) error {
	for i, v := range out {
		decl := s.outputs[i]
		if v != nil || decl.Shape == nil {
			continue
		}
		var err error
		switch {
		case len(decl.Shape) == 0:
			out[i], err = newScalarOf(decl.DType)
		case decl.DType == Float16 || decl.DType == BFloat16:
			if slices.Contains(decl.Shape, -1) {
				return s.ioErr(decl.Name, "%s output %v has symbolic dims: pass a buffer with RunInto "+
					"(onnxruntime_go v1.27 cannot copy 16-bit float outputs)", decl.DType, decl.Shape)
			}
			var t *Tensor
			if decl.DType == Float16 {
				t, err = NewEmptyTensor[Half](decl.Shape)
			} else {
				t, err = NewEmptyTensor[BHalf](decl.Shape)
			}
			if err == nil {
				out[i] = t.v
			}
		}
		if err != nil {
			return fmt.Errorf("runtime: run %s: output %q: %w", s.name, decl.Name, err)
		}
	}
	return nil
}

func newScalarOf(dt DType) (ort.Value, error) {
	switch dt {
	case Float32:
		return ort.NewEmptyScalar[float32]()
	case Float64:
		return ort.NewEmptyScalar[float64]()
	case Int64:
		return ort.NewEmptyScalar[int64]()
	case Int32:
		return ort.NewEmptyScalar[int32]()
	case Bool:
		return ort.NewEmptyScalar[bool]()
	case Uint8:
		return ort.NewEmptyScalar[uint8]()
	case Int8:
		return ort.NewEmptyScalar[int8]()
	}
	return nil, fmt.Errorf("%w: %s scalars are not supported", ErrBadTensor, dt)
}

// exec runs the session; a cancellable ctx gets a RunOptions whose
// terminate flag is raised when ctx is done.
func (s *Session) exec(ctx context.Context, in, out []ort.Value) (err error) {
	if ctx.Done() == nil {
		if err := s.sess.Run(in, out); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrRun, s.name, err)
		}
		return nil
	}
	ro, err := ort.NewRunOptions()
	if err != nil {
		return fmt.Errorf("%w: %s: run options: %v", ErrRun, s.name, err)
	}
	defer func() { err = errors.Join(err, ro.Destroy()) }()
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = ro.Terminate() // fails only if ro is gone, which the wait below prevents
	})
	select {
	case <-ctx.Done():
		<-fired // ctx ended after the first check: raise the flag before the run starts
	default:
	}
	runErr := s.sess.RunWithOptions(in, out, ro)
	if !stop() {
		<-fired // Terminate is running or ran: wait before destroying ro
	}
	if runErr != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("runtime: run %s: %w (%v)", s.name, cerr, runErr)
		}
		return fmt.Errorf("%w: %s: %v", ErrRun, s.name, runErr)
	}
	return nil
}

// isNil reports a nil Value, including a typed nil pointer, which
// onnxruntime_go stores in the output slice when converting an output fails.
func isNil(v ort.Value) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
