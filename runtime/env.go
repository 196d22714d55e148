package runtime

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"

	"github.com/medgr2/medgr2/runtime/internal/ortc"
	ort "github.com/yalue/onnxruntime_go"
)

// Options configures Open.
type Options struct {
	// LibraryPath names the ONNX Runtime shared library. "" searches with
	// Locator (MEDGR2_ORT_LIB, third_party/ort, system paths).
	LibraryPath string
	// Locator is the search used when LibraryPath is "".
	Locator Locator
	// Logger receives the few lines this package logs (the CUDA → CPU
	// fallback, session creation at debug level). nil discards them.
	Logger *slog.Logger
}

// ortProcess is the one ONNX Runtime environment of this process.
// onnxruntime_go keeps the OrtEnv in package globals, so this state is
// necessarily process-wide; mu makes first use safe from many goroutines.
type ortProcess struct {
	mu   sync.Mutex
	path string    // library loaded; "" until the first successful Open
	info ortc.Info // version and providers of that library
}

var proc ortProcess

// Env is a handle on the process-wide ONNX Runtime environment. Any number
// of Envs may be open at once (they share the environment); each carries its
// own logger and CUDA probe cache. Methods are safe for concurrent use.
//
// The environment itself is created by the first successful Open and lives
// until the process exits: releasing and reloading ORT while tensors or
// sessions from other packages might still exist is unsafe, and reloading
// costs more than keeping it.
type Env struct {
	path      string
	version   string
	providers []string
	log       *slog.Logger

	mu     sync.Mutex
	closed bool
	cuda   map[int]error // CUDA probe result per device ordinal; nil error = usable
	warned bool          // the auto → CPU fallback line was logged
}

// Open loads ONNX Runtime (once per process) and returns a handle on it.
// It fails with a *LibraryError (wrapping ErrLibraryNotFound or
// ErrLibraryLoad) when the library is missing or broken, and with
// ErrEnvConflict when the process already loaded a different library file.
func Open(ctx context.Context, opts Options) (*Env, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("runtime: open: %w", err)
	}
	path := opts.LibraryPath
	if path == "" {
		p, err := opts.Locator.Find()
		if err != nil {
			return nil, err
		}
		path = p
	} else if !isFile(path) {
		return nil, &LibraryError{Tried: []string{path}, Err: fmt.Errorf("%s: no such file", path)}
	}
	info, err := proc.load(path)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Env{
		path:      proc.path,
		version:   info.Version,
		providers: info.Providers,
		log:       log,
		cuda:      map[int]error{},
	}, nil
}

// load initialises ORT from path unless it already is, and returns what the
// library reports about itself.
func (p *ortProcess) load(path string) (ortc.Info, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.path != "" && sameFile(p.path, path) {
		return p.info, nil
	}
	info, err := ortc.Query(path)
	if err != nil {
		return ortc.Info{}, &LibraryError{Path: path, Err: err}
	}
	if p.path != "" {
		return ortc.Info{}, fmt.Errorf("%w: loaded %s, asked for %s", ErrEnvConflict, p.path, path)
	}
	// A test helper (graph/graphtest) may have initialised onnxruntime_go
	// in this process already; adopt that environment instead of failing.
	if !ort.IsInitialized() {
		ort.SetSharedLibraryPath(path)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			return ortc.Info{}, &LibraryError{Path: path, Err: err}
		}
	}
	p.path, p.info = path, info
	return info, nil
}

func sameFile(a, b string) bool {
	if a == b {
		return true
	}
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

// Version returns the ONNX Runtime version string, e.g. "1.30.0".
func (e *Env) Version() string { return e.version }

// LibraryPath returns the path of the loaded ONNX Runtime library.
func (e *Env) LibraryPath() string { return e.path }

// Providers returns the execution providers compiled into the library, in
// ORT's priority order (e.g. "CUDAExecutionProvider",
// "CPUExecutionProvider"). Being listed does not mean a provider works:
// CUDA also needs its provider plugin, the CUDA libraries and a GPU, which
// ResolveDevice checks.
func (e *Env) Providers() []string { return slices.Clone(e.providers) }

// Close releases this handle. It is nil-safe and idempotent. Sessions made
// from the Env stay usable until they are closed; the ORT environment itself
// stays loaded for the rest of the process (see Env).
func (e *Env) Close() error {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	return nil
}

func (e *Env) checkOpen() error {
	if e == nil {
		return fmt.Errorf("%w: nil Env", ErrClosed)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("%w: Env", ErrClosed)
	}
	return nil
}
