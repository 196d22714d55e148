package pipeline

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the pipeline returns wraps one of these or
// an error of the package that failed, so callers test them with errors.Is.
var (
	// ErrConfig: the configuration file is missing, malformed or out of
	// range.
	ErrConfig = errors.New("pipeline: invalid config")
	// ErrState: the stage state file cannot be read or written.
	ErrState = errors.New("pipeline: bad state file")
	// ErrData: the data a stage needs is missing or unusable (no seed
	// items, no accepted samples, no images).
	ErrData = errors.New("pipeline: unusable data")
)

// StageError reports a stage that failed: which one and why.
type StageError struct {
	Stage string // stage name, e.g. "s1/round-2"
	Err   error  // the cause
}

// Error formats the error as "pipeline: stage s1/round-2: …".
func (e *StageError) Error() string { return fmt.Sprintf("pipeline: stage %s: %v", e.Stage, e.Err) }

// Unwrap returns the cause.
func (e *StageError) Unwrap() error { return e.Err }

// configError returns an error wrapping ErrConfig.
func configError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}
