package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// Session is a loaded model with named inputs and outputs. Run and RunInto
// are safe for concurrent use (ORT sessions are); Close waits for runs in
// flight.
type Session struct {
	name    string // model path, or the name given to NewSessionFromBytes
	device  Device
	inputs  []IOInfo
	outputs []IOInfo
	inIdx   map[string]int
	outIdx  map[string]int

	mu   sync.RWMutex                // Run holds it shared, Close exclusive
	sess *ort.DynamicAdvancedSession // nil after Close
}

// NewSession loads the ONNX model at path. Missing or unreadable files fail
// with a *ModelError wrapping ErrModelNotFound; empty, truncated or non-ONNX
// files, and models ORT rejects, with one wrapping ErrInvalidModel. External
// data files are resolved relative to path. Loading cannot be interrupted;
// ctx is checked before it starts.
func (e *Env) NewSession(ctx context.Context, path string, opts SessionOptions) (*Session, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("runtime: open %s: %w", path, err)
	}
	data, unmap, err := mapFile(path)
	if err != nil {
		return nil, err
	}
	ins, outs, err := declaredIO(data)
	unmap()
	if err != nil {
		return nil, &ModelError{Path: path, Kind: ErrInvalidModel, Err: err}
	}
	return e.newSession(ctx, path, ins, outs, opts, func(in, out []string, so *ort.SessionOptions) (*ort.DynamicAdvancedSession, error) {
		return ort.NewDynamicAdvancedSession(path, in, out, so)
	})
}

// NewSessionFromBytes loads a serialized ONNX model held in memory; name
// identifies it in errors and logs. External data, if any, is resolved
// relative to the working directory.
func (e *Env) NewSessionFromBytes(ctx context.Context, name string, model []byte, opts SessionOptions) (*Session, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("runtime: open %s: %w", name, err)
	}
	if len(model) == 0 {
		return nil, &ModelError{Path: name, Kind: ErrInvalidModel, Err: errors.New("empty model")}
	}
	ins, outs, err := declaredIO(model)
	if err != nil {
		return nil, &ModelError{Path: name, Kind: ErrInvalidModel, Err: err}
	}
	return e.newSession(ctx, name, ins, outs, opts, func(in, out []string, so *ort.SessionOptions) (*ort.DynamicAdvancedSession, error) {
		return ort.NewDynamicAdvancedSessionWithONNXData(model, in, out, so)
	})
}

type createFunc func(in, out []string, so *ort.SessionOptions) (*ort.DynamicAdvancedSession, error)

func (e *Env) newSession(ctx context.Context, name string, ins, outs []IOInfo, opts SessionOptions, create createFunc) (_ *Session, err error) {
	if len(ins) == 0 {
		return nil, &ModelError{Path: name, Kind: ErrInvalidModel, Err: errors.New("model has no runtime inputs (not supported)")}
	}
	so, dev, err := e.sessionOptions(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("runtime: open %s: %w", name, err)
	}
	defer func() { err = errors.Join(err, so.Destroy()) }()
	s := &Session{name: name, device: dev, inputs: ins, outputs: outs,
		inIdx: indexOf(ins), outIdx: indexOf(outs)}
	sess, err := create(names(ins), names(outs), so)
	if err != nil {
		return nil, &ModelError{Path: name, Kind: ErrInvalidModel, Err: err}
	}
	s.sess = sess
	if len(opts.Expect) > 0 {
		if err := s.Check(opts.Expect); err != nil {
			return nil, errors.Join(err, s.Close())
		}
	}
	e.log.Debug("runtime: session opened", "model", name, "device", dev.String(),
		"inputs", len(ins), "outputs", len(outs))
	return s, nil
}

func names(infos []IOInfo) []string {
	out := make([]string, len(infos))
	for i, v := range infos {
		out[i] = v.Name
	}
	return out
}

func indexOf(infos []IOInfo) map[string]int {
	m := make(map[string]int, len(infos))
	for i, v := range infos {
		m[v.Name] = i
	}
	return m
}

// Name returns the model path (or the name given to NewSessionFromBytes).
func (s *Session) Name() string { return s.name }

// Device returns the device the session runs on (never auto).
func (s *Session) Device() Device { return s.device }

// Inputs returns the model's runtime inputs in declaration order (inputs
// with a default initializer are not listed).
func (s *Session) Inputs() []IOInfo { return cloneIO(s.inputs) }

// Outputs returns the model's outputs in declaration order.
func (s *Session) Outputs() []IOInfo { return cloneIO(s.outputs) }

// Close releases the session after waiting for runs in flight. It is
// nil-safe and idempotent.
func (s *Session) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil {
		return nil
	}
	err := s.sess.Destroy()
	s.sess = nil
	if err != nil {
		return fmt.Errorf("runtime: close %s: %w", s.name, err)
	}
	return nil
}

// Check compares what a caller expects of the model with what it declares,
// before any run. Each expectation names an input or an output; DType
// Undefined matches any type; a nil Shape matches any shape; -1 in a Shape
// matches any size, and a symbolic model dim accepts any expected size. All
// mismatches are reported, joined, each an *IOError naming the input or
// output with the expected and actual type or shape.
func (s *Session) Check(expect []IOInfo) error {
	var errs []error
	for _, want := range expect {
		got, ok := s.lookup(want.Name)
		if !ok {
			errs = append(errs, s.ioErr(want.Name, "not an input or output of the model (inputs: %s; outputs: %s)",
				strings.Join(names(s.inputs), ", "), strings.Join(names(s.outputs), ", ")))
			continue
		}
		if want.DType != Undefined && want.DType != got.DType {
			errs = append(errs, s.ioErr(want.Name, "expected element type %s, model has %s", want.DType, got.DType))
		}
		if want.Shape != nil && !shapesCompatible(got.Shape, want.Shape, true) {
			errs = append(errs, s.ioErr(want.Name, "expected shape %v, model shape %v", want.Shape, got.Shape))
		}
	}
	return errors.Join(errs...)
}

func (s *Session) lookup(name string) (IOInfo, bool) {
	if i, ok := s.inIdx[name]; ok {
		return s.inputs[i], true
	}
	if i, ok := s.outIdx[name]; ok {
		return s.outputs[i], true
	}
	return IOInfo{}, false
}

func (s *Session) ioErr(name, format string, args ...any) *IOError {
	return &IOError{Model: s.name, Name: name, Reason: fmt.Sprintf(format, args...)}
}

// shapesCompatible reports whether a concrete or expected shape fits the
// model's declared shape: a nil declared shape (unknown rank) fits anything,
// ranks must agree, a declared -1 fits any size, and with wildcard an
// expected -1 fits any size too.
func shapesCompatible(declared, actual []int64, wildcard bool) bool {
	if declared == nil {
		return true
	}
	if len(declared) != len(actual) {
		return false
	}
	for i, d := range declared {
		if d >= 0 && d != actual[i] && !(wildcard && actual[i] == -1) {
			return false
		}
	}
	return true
}
