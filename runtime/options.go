package runtime

import (
	"context"
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// GraphOptimization is ONNX Runtime's graph optimisation level.
type GraphOptimization int

// Optimisation levels. The zero value, OptimizeAll, is ORT's default.
const (
	OptimizeAll      GraphOptimization = iota // every optimisation, incl. layout
	OptimizeExtended                          // basic + complex node fusions
	OptimizeBasic                             // constant folding, redundant node removal
	OptimizeDisabled                          // run the graph as written
)

// SessionOptions configures a session. The zero value runs on Device auto
// with ORT's default threads and every optimisation.
type SessionOptions struct {
	// Device selects the execution provider; see ParseDevice.
	Device Device
	// IntraOpThreads is the size of the thread pool used inside one
	// operator; 0 lets ORT choose (one per physical core). Negative values
	// are an error.
	IntraOpThreads int
	// InterOpThreads is the thread pool size for running independent
	// operators concurrently; used only with ParallelExecution. 0 = ORT's
	// default.
	InterOpThreads int
	// ParallelExecution runs independent branches of the graph concurrently
	// (ORT_PARALLEL); the default is sequential, which is faster for
	// transformer decoders.
	ParallelExecution bool
	// GraphOptimization is the optimisation level (default OptimizeAll).
	GraphOptimization GraphOptimization
	// DisableMemPattern turns off ORT's memory pattern planning (which
	// pre-plans buffers for repeated shapes). Turn it off when input shapes
	// change on every call, as in decode loops with a growing cache.
	DisableMemPattern bool
	// DisableCPUArena turns off the CPU memory arena.
	DisableCPUArena bool
	// Config holds extra ORT session config entries, e.g.
	// "session.intra_op.allow_spinning": "0".
	Config map[string]string
	// Expect, when set, is checked with Session.Check before the session is
	// returned: a mismatch closes the session and returns the error.
	Expect []IOInfo
}

// validate reports options out of range.
func (o SessionOptions) validate() error {
	var err error
	if o.IntraOpThreads < 0 {
		err = errors.Join(err, fmt.Errorf("%w: IntraOpThreads %d < 0", ErrBadOptions, o.IntraOpThreads))
	}
	if o.InterOpThreads < 0 {
		err = errors.Join(err, fmt.Errorf("%w: InterOpThreads %d < 0", ErrBadOptions, o.InterOpThreads))
	}
	if o.GraphOptimization < OptimizeAll || o.GraphOptimization > OptimizeDisabled {
		err = errors.Join(err, fmt.Errorf("%w: GraphOptimization %d", ErrBadOptions, o.GraphOptimization))
	}
	return err
}

func (g GraphOptimization) ort() ort.GraphOptimizationLevel {
	switch g {
	case OptimizeExtended:
		return ort.GraphOptimizationLevel(ort.GraphOptimizationLevelEnableExtended)
	case OptimizeBasic:
		return ort.GraphOptimizationLevel(ort.GraphOptimizationLevelEnableBasic)
	case OptimizeDisabled:
		return ort.GraphOptimizationLevel(ort.GraphOptimizationLevelDisableAll)
	}
	return ort.GraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll)
}

// sessionOptions builds ORT session options for o and returns the device
// the session will run on. The caller destroys the options.
func (e *Env) sessionOptions(ctx context.Context, o SessionOptions) (*ort.SessionOptions, Device, error) {
	if err := o.validate(); err != nil {
		return nil, Device{}, err
	}
	dev, err := e.ResolveDevice(ctx, o.Device)
	if err != nil {
		return nil, Device{}, err
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, Device{}, fmt.Errorf("runtime: session options: %w", err)
	}
	if err := configure(so, o, dev); err != nil {
		return nil, Device{}, errors.Join(err, so.Destroy())
	}
	return so, dev, nil
}

// configure applies o to so; dev is the resolved device.
func configure(so *ort.SessionOptions, o SessionOptions, dev Device) error {
	mode := ort.ExecutionMode(ort.ExecutionModeSequential)
	if o.ParallelExecution {
		mode = ort.ExecutionMode(ort.ExecutionModeParallel)
	}
	steps := []struct {
		what string
		err  func() error
	}{
		{"intra-op threads", func() error { return so.SetIntraOpNumThreads(o.IntraOpThreads) }},
		{"inter-op threads", func() error { return so.SetInterOpNumThreads(o.InterOpThreads) }},
		{"execution mode", func() error { return so.SetExecutionMode(mode) }},
		{"optimisation level", func() error { return so.SetGraphOptimizationLevel(o.GraphOptimization.ort()) }},
		{"memory pattern", func() error { return so.SetMemPattern(!o.DisableMemPattern) }},
		{"CPU arena", func() error { return so.SetCpuMemArena(!o.DisableCPUArena) }},
	}
	for _, s := range steps {
		if err := s.err(); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrBadOptions, s.what, err)
		}
	}
	for k, v := range o.Config {
		if err := so.AddSessionConfigEntry(k, v); err != nil {
			return fmt.Errorf("%w: config %s=%s: %v", ErrBadOptions, k, v, err)
		}
	}
	if dev.Kind == DeviceCUDA {
		return appendCUDA(so, dev.ID)
	}
	return nil
}
