package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/medgr2/medgr2/server/api"
)

// ErrNotFound reports a job id the store never issued.
var ErrNotFound = errors.New("queue: job not found")

// ErrLost reports a job the store issued but holds no record of any more:
// its results expired or the store lost its data. Errors of type
// *LostError match it with errors.Is.
var ErrLost = errors.New("queue: job state lost")

// ErrEmptyJob reports a job submitted with no items.
var ErrEmptyJob = errors.New("queue: job has no items")

// ErrUnavailable reports a store that cannot be reached (Redis down, the
// database closed); the caller may retry later.
var ErrUnavailable = errors.New("queue: store unavailable")

// LostError reports a job this store issued and no longer holds.
type LostError struct {
	ID      string    // the job id
	Created time.Time // when the job was submitted (from its id)
	Why     string    // what may have happened, for the client
}

func (e *LostError) Error() string {
	return fmt.Sprintf("queue: job %s (submitted %s) is no longer held by the job store: %s",
		e.ID, e.Created.Format(time.RFC3339), e.Why)
}

// Is makes errors.Is(err, ErrLost) true.
func (e *LostError) Is(target error) bool { return target == ErrLost }

// Task is one job item handed to a worker.
type Task struct {
	JobID    string // job the item belongs to
	Index    int    // item position in the job, from 0
	Kind     string // api.JobKindScore or api.JobKindVQA
	Payload  []byte // the item's JSON line
	Attempts int    // failed attempts so far
	ref      string // store-specific handle (stream entry id, record key)
}

// Outcome is what a worker produced for one task: a JSON result or an
// error message.
type Outcome struct {
	Result json.RawMessage // set on success
	Err    string          // set on failure
}

// Job is a job's status as clients see it, with the key that owns it.
type Job struct {
	api.JobStatus
	// Owner is the opaque owner name given to Submit (the server passes a
	// keyed hash of the API key); "" for none.
	Owner string
}

// Store is a job queue with durable results. Bolt is the embedded default
// (one process, a file in the state folder); Redis shares jobs between
// replicas.
type Store interface {
	// Submit creates a job of kind owned by owner, with one task per item,
	// and returns its id.
	Submit(ctx context.Context, kind, owner string, items [][]byte) (string, error)
	// Status reports progress and owner; ErrNotFound for an id the store
	// never issued, ErrLost for one it no longer holds.
	Status(ctx context.Context, id string) (Job, error)
	// Results calls fn with each finished item's JSONL line (an
	// api.JobResult), in index order.
	Results(ctx context.Context, id string, fn func(line []byte) error) error
	// Cancel marks a job cancelled; tasks not yet started are dropped.
	Cancel(ctx context.Context, id string) error
	// Claim waits up to its block time for at most max tasks for consumer.
	Claim(ctx context.Context, consumer string, max int) ([]Task, error)
	// Complete records t's outcome (the first outcome per item wins) and
	// acknowledges it.
	Complete(ctx context.Context, t Task, o Outcome) error
	// Fail re-queues t after a transient error, or, after MaxAttempts,
	// moves it to the dead-letter list and records cause as its result.
	Fail(ctx context.Context, t Task, cause error) error
	// Release re-queues t without counting an attempt (used on shutdown).
	Release(ctx context.Context, t Task) error
	// Pending returns how many tasks wait or run (not yet completed).
	Pending(ctx context.Context) (int64, error)
	// Ping checks that the store answers; ErrUnavailable when it does not.
	Ping(ctx context.Context) error
}

// PermanentError marks a processing error that retrying cannot fix (bad
// input); the worker records it as the item's result at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError.
func Permanent(err error) error { return &PermanentError{Err: err} }

// maxJobErrors bounds the errors listed in a job's status.
const maxJobErrors = 100

// resultLine encodes one api.JobResult line.
func resultLine(index int, o Outcome) []byte {
	r := api.JobResult{Index: index, Error: o.Err}
	if o.Err == "" {
		r.Result = o.Result
	}
	b, err := json.Marshal(r)
	if err != nil {
		b, _ = json.Marshal(api.JobResult{Index: index, Error: "queue: result not encodable: " + err.Error()})
	}
	return b
}

// state derives a job state from its counts.
func state(canceled bool, done, total int) string {
	switch {
	case canceled:
		return api.JobCanceled
	case done >= total:
		return api.JobDone
	case done > 0:
		return api.JobRunning
	default:
		return api.JobQueued
	}
}
