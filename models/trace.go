package models

import (
	"context"
	"sync/atomic"
	"time"
)

// Trace accumulates where the model calls made with a context carrying it
// (WithTrace) spend their time: today the vision encoder's share, the rest
// of a call being the language model. It is safe for concurrent use; the
// zero value is ready.
type Trace struct {
	vision atomic.Int64 // nanoseconds in the vision encoder
}

// Vision returns the time spent in the vision encoder so far.
func (t *Trace) Vision() time.Duration { return time.Duration(t.vision.Load()) }

type traceKey struct{}

// WithTrace returns a context whose model calls add their stage times to
// t, as net/http/httptrace attaches a ClientTrace.
func WithTrace(ctx context.Context, t *Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

// traceVision adds the time since start to the vision stage of ctx's
// Trace, if it carries one.
func traceVision(ctx context.Context, start time.Time) {
	if t, ok := ctx.Value(traceKey{}).(*Trace); ok && t != nil {
		t.vision.Add(int64(time.Since(start)))
	}
}
