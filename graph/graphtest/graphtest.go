// Package graphtest runs ONNX files written by package graph through ONNX
// Runtime (github.com/yalue/onnxruntime_go) so tests can compare them with
// reference computations. It is a test helper, in the spirit of
// net/http/httptest; production code runs models through package runtime.
//
// The ONNX Runtime shared library is found the way package runtime finds it
// (MEDGR2_ORT_LIB, then third_party/ort/ upward from the working directory,
// then the system paths). A missing library is an error (ErrNoRuntime),
// never a silent skip.
//
//	s, err := graphtest.Open(ctx, "model.onnx", []string{"x"}, []string{"y"})
//	if err != nil { … }
//	defer s.Close()
//	out, err := s.Run(ctx, map[string]*graph.Tensor{"x": x})
package graphtest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/runtime"
)

// ErrNoRuntime reports that the ONNX Runtime library could not be loaded.
var ErrNoRuntime = errors.New("graphtest: ONNX Runtime library not available (run `make ort` or set MEDGR2_ORT_LIB)")

// initOnce guards the process-wide ONNX Runtime environment, which
// onnxruntime_go keeps globally.
var initOnce = sync.OnceValue(func() error {
	if ort.IsInitialized() { // by package runtime in the same test binary
		return nil
	}
	lib, err := runtime.Locator{}.Find()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoRuntime, err)
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(); err != nil {
		return fmt.Errorf("%w: %v", ErrNoRuntime, err)
	}
	return nil
})

// Session is one ONNX Runtime session on a model file with fixed input and
// output names.
type Session struct {
	s       *ort.DynamicAdvancedSession
	inputs  []string
	outputs []string
}

// Open loads the model at path (external data resolves relative to its
// folder) on the CPU with one intra-op thread.
func Open(ctx context.Context, path string, inputs, outputs []string) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := initOnce(); err != nil {
		return nil, err
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("graphtest: session options: %w", err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("graphtest: session options: %w", err)
	}
	s, err := ort.NewDynamicAdvancedSession(path, inputs, outputs, opts)
	if err != nil {
		return nil, fmt.Errorf("graphtest: open %s: %w", path, err)
	}
	return &Session{s: s, inputs: inputs, outputs: outputs}, nil
}

// Close releases the session; it is safe on nil.
func (s *Session) Close() error {
	if s == nil || s.s == nil {
		return nil
	}
	err := s.s.Destroy()
	s.s = nil
	return err
}

// Run feeds the named tensors and returns every output by name.
func (s *Session) Run(ctx context.Context, feeds map[string]*graph.Tensor) (res map[string]*graph.Tensor, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ins := make([]ort.Value, len(s.inputs))
	defer func() {
		for _, v := range ins {
			if v != nil {
				err = errors.Join(err, v.Destroy())
			}
		}
	}()
	for i, name := range s.inputs {
		t, ok := feeds[name]
		if !ok {
			return nil, fmt.Errorf("graphtest: no feed for input %q", name)
		}
		v, err := toOrt(t)
		if err != nil {
			return nil, fmt.Errorf("graphtest: input %q: %w", name, err)
		}
		ins[i] = v
	}
	outs := make([]ort.Value, len(s.outputs))
	if err := s.s.Run(ins, outs); err != nil {
		return nil, fmt.Errorf("graphtest: run: %w", err)
	}
	res = map[string]*graph.Tensor{}
	for i, v := range outs {
		t, cerr := fromOrt(v)
		err = errors.Join(err, v.Destroy())
		if cerr != nil {
			return nil, errors.Join(err, fmt.Errorf("graphtest: output %q: %w", s.outputs[i], cerr))
		}
		res[s.outputs[i]] = t
	}
	return res, err
}

// RunFile opens path, runs it once with feeds and closes it.
func RunFile(ctx context.Context, path string, feeds map[string]*graph.Tensor, outputs ...string) (res map[string]*graph.Tensor, err error) {
	names := make([]string, 0, len(feeds))
	for n := range feeds {
		names = append(names, n)
	}
	s, err := Open(ctx, path, names, outputs)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, s.Close()) }()
	return s.Run(ctx, feeds)
}

func toOrt(t *graph.Tensor) (ort.Value, error) {
	if t == nil {
		return nil, fmt.Errorf("nil tensor")
	}
	shape := ort.NewShape(t.Dims...)
	if len(t.Dims) == 0 {
		return nil, fmt.Errorf("rank-0 tensors are not supported by onnxruntime_go; use shape [1]")
	}
	switch t.DType {
	case graph.Float32:
		return ort.NewTensor(shape, t.F32)
	case graph.Float64:
		return ort.NewTensor(shape, t.F64)
	case graph.Int64:
		return ort.NewTensor(shape, t.I64)
	case graph.Int32:
		return ort.NewTensor(shape, t.I32)
	case graph.Bool:
		return ort.NewTensor(shape, t.Bool)
	}
	return nil, fmt.Errorf("unsupported dtype %v", t.DType)
}

func fromOrt(v ort.Value) (*graph.Tensor, error) {
	dims := []int64(v.GetShape())
	switch x := v.(type) {
	case *ort.Tensor[float32]:
		return graph.NewFloat32(dims, append([]float32(nil), x.GetData()...))
	case *ort.Tensor[float64]:
		return graph.NewFloat64(dims, append([]float64(nil), x.GetData()...))
	case *ort.Tensor[int64]:
		return graph.NewInt64(dims, append([]int64(nil), x.GetData()...))
	case *ort.Tensor[int32]:
		return graph.NewInt32(dims, append([]int32(nil), x.GetData()...))
	case *ort.Tensor[bool]:
		return graph.NewBool(dims, append([]bool(nil), x.GetData()...))
	}
	return nil, fmt.Errorf("unsupported output value %T", v)
}
