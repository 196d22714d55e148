package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/medgr2/medgr2/server/api"
)

// ErrNotFound reports an unknown job id.
var ErrNotFound = errors.New("queue: job not found")

// ErrEmptyJob reports a job submitted with no items.
var ErrEmptyJob = errors.New("queue: job has no items")

// Task is one job item handed to a worker.
type Task struct {
	JobID    string // job the item belongs to
	Index    int    // item position in the job, from 0
	Kind     string // api.JobKindScore or api.JobKindVQA
	Payload  []byte // the item's JSON line
	Attempts int    // failed attempts so far
	ref      string // store-specific handle (stream entry id)
}

// Outcome is what a worker produced for one task: a JSON result or an
// error message.
type Outcome struct {
	Result json.RawMessage // set on success
	Err    string          // set on failure
}

// Store is a job queue with durable results. Memory is the in-process
// default; Redis shares jobs between replicas.
type Store interface {
	// Submit creates a job of kind with one task per item and returns its id.
	Submit(ctx context.Context, kind string, items [][]byte) (string, error)
	// Status reports progress; ErrNotFound for an unknown id.
	Status(ctx context.Context, id string) (api.JobStatus, error)
	// Results calls fn with each finished item's JSONL line (an
	// api.JobResult), in index order.
	Results(ctx context.Context, id string, fn func(line []byte) error) error
	// Cancel marks a job cancelled; tasks not yet started are dropped.
	Cancel(ctx context.Context, id string) error
	// Claim waits up to block for at most max tasks for consumer.
	Claim(ctx context.Context, consumer string, max int) ([]Task, error)
	// Complete records t's outcome (the first outcome per item wins) and
	// acknowledges it.
	Complete(ctx context.Context, t Task, o Outcome) error
	// Fail re-queues t after a transient error, or, after MaxAttempts,
	// moves it to the dead-letter list and records cause as its result.
	Fail(ctx context.Context, t Task, cause error) error
	// Release re-queues t without counting an attempt (used on shutdown).
	Release(ctx context.Context, t Task) error
}

// PermanentError marks a processing error that retrying cannot fix (bad
// input); the worker records it as the item's result at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError.
func Permanent(err error) error { return &PermanentError{Err: err} }

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

// newID returns a random job id.
func newID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("queue: job id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
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
