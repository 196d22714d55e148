package runtime

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error this package returns wraps one of them, so
// callers branch with errors.Is.
var (
	// ErrLibraryNotFound: no ONNX Runtime shared library was found.
	ErrLibraryNotFound = errors.New("runtime: ONNX Runtime library not found")
	// ErrLibraryLoad: a library file was found but could not be loaded.
	ErrLibraryLoad = errors.New("runtime: ONNX Runtime library failed to load")
	// ErrEnvConflict: the process already loaded a different ORT library.
	ErrEnvConflict = errors.New("runtime: ONNX Runtime already loaded from another path")
	// ErrClosed: the Env, Session or Tensor was used after Close.
	ErrClosed = errors.New("runtime: use after close")
	// ErrBadDevice: a device string is not auto, cpu, cuda or cuda:N.
	ErrBadDevice = errors.New("runtime: invalid device")
	// ErrCUDAUnavailable: CUDA was requested but cannot be used.
	ErrCUDAUnavailable = errors.New("runtime: CUDA execution provider unavailable")
	// ErrBadOptions: session options are out of range.
	ErrBadOptions = errors.New("runtime: invalid session options")
	// ErrModelNotFound: the model file does not exist or cannot be read.
	ErrModelNotFound = errors.New("runtime: model file not found")
	// ErrInvalidModel: the model file is empty, truncated or not ONNX, or
	// ONNX Runtime rejected it.
	ErrInvalidModel = errors.New("runtime: invalid ONNX model")
	// ErrIOMismatch: a tensor or an expectation does not match the model's
	// declared input or output (name, element type or shape).
	ErrIOMismatch = errors.New("runtime: input/output mismatch")
	// ErrBadTensor: tensor shape and data disagree, or the element type is
	// not the one asked for.
	ErrBadTensor = errors.New("runtime: invalid tensor")
	// ErrRun: ONNX Runtime returned an error while running a session.
	ErrRun = errors.New("runtime: run failed")
)

// LibraryError reports that the ONNX Runtime library could not be found or
// loaded. Its message names the paths tried and the command that installs
// the library. It wraps ErrLibraryNotFound or ErrLibraryLoad.
type LibraryError struct {
	Path  string   // the library that failed to load; "" when none was found
	Tried []string // every candidate looked at, in order
	Err   error    // ErrLibraryNotFound, or the loader's error
}

// fixHint tells the user how to get the library.
const fixHint = "run `make ort` (or scripts/fetch-ort.sh) in the medgr2 repository, " +
	"or set MEDGR2_ORT_LIB to the path of libonnxruntime.so.1"

func (e *LibraryError) Error() string {
	var b strings.Builder
	if e.Path == "" {
		b.WriteString(ErrLibraryNotFound.Error())
	} else {
		fmt.Fprintf(&b, "%v: %s: %v", ErrLibraryLoad, e.Path, e.Err)
	}
	if len(e.Tried) > 0 {
		const show = 4 // the rest are system folders; the field has them all
		tried := strings.Join(e.Tried[:min(show, len(e.Tried))], ", ")
		if len(e.Tried) > show {
			tried += fmt.Sprintf(" and %d more", len(e.Tried)-show)
		}
		fmt.Fprintf(&b, " (tried %s)", tried)
	}
	b.WriteString("; ")
	b.WriteString(fixHint)
	return b.String()
}

// Unwrap returns the sentinel and the underlying cause.
func (e *LibraryError) Unwrap() []error {
	if e.Path == "" {
		return []error{ErrLibraryNotFound, e.Err}
	}
	return []error{ErrLibraryLoad, e.Err}
}

// ModelError reports a model file that cannot be opened or parsed. It wraps
// ErrModelNotFound or ErrInvalidModel together with the cause.
type ModelError struct {
	Path string // model file, or the name given to NewSessionFromBytes
	Kind error  // ErrModelNotFound or ErrInvalidModel
	Err  error  // the cause
}

func (e *ModelError) Error() string {
	return fmt.Sprintf("%v %s: %v", e.Kind, e.Path, e.Err)
}

// Unwrap returns the sentinel and the cause.
func (e *ModelError) Unwrap() []error { return []error{e.Kind, e.Err} }

// IOError reports one input or output whose name, element type or shape does
// not match the model. It wraps ErrIOMismatch.
type IOError struct {
	Model  string // model path or name
	Name   string // input or output name
	Reason string // what is wrong, e.g. "shape [2 3] does not match model shape [-1 4]"
}

func (e *IOError) Error() string {
	return fmt.Sprintf("%v: %s: %q: %s", ErrIOMismatch, e.Model, e.Name, e.Reason)
}

// Unwrap returns ErrIOMismatch.
func (e *IOError) Unwrap() error { return ErrIOMismatch }
