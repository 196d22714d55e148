package train

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the trainer returns wraps one of these (or
// an error of the package that failed: graph, models, runtime), so callers
// test them with errors.Is.
var (
	// ErrConfig: a setting is missing or out of range.
	ErrConfig = errors.New("train: invalid config")
	// ErrData: an example cannot be turned into a batch (no answer span,
	// too long for every bucket, image tokens that do not match).
	ErrData = errors.New("train: invalid training data")
	// ErrShape: a tensor fed to a train step does not have the bucket's
	// shape.
	ErrShape = errors.New("train: shape mismatch")
	// ErrNonFinite: the loss or the gradient norm of a step is NaN or
	// infinite; the step's update is discarded.
	ErrNonFinite = errors.New("train: non-finite loss")
	// ErrCheckpoint: a checkpoint is missing, incomplete or does not match
	// the run being resumed.
	ErrCheckpoint = errors.New("train: bad checkpoint")
	// ErrClosed: a Stepper was used after Close.
	ErrClosed = errors.New("train: use after close")
)

// StepError reports a failed train step: which step and bucket, and why.
type StepError struct {
	Step   int    // 1-based number of the update that failed
	Bucket Bucket // the (batch, length) bucket of the step
	Err    error  // wraps ErrNonFinite, ErrShape or a runtime error
}

// Error formats the error as "train: step 12 (bucket 4×64): …".
func (e *StepError) Error() string {
	return fmt.Sprintf("train: step %d (bucket %d×%d): %v", e.Step, e.Bucket.Batch, e.Bucket.Length, e.Err)
}

// Unwrap returns the cause.
func (e *StepError) Unwrap() error { return e.Err }
