package queue

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// ProcessFunc handles one task's payload and returns its JSON result. An
// error wrapped by Permanent becomes the item's result at once; any other
// error is retried (Store.Fail).
type ProcessFunc func(ctx context.Context, kind string, payload []byte) (json.RawMessage, error)

// Worker pulls tasks from a Store and processes them concurrently.
type Worker struct {
	Store       Store         // where tasks come from
	Consumer    string        // unique consumer name (host:pid)
	Concurrency int           // tasks in flight at once; default 16
	Process     ProcessFunc   // the work
	Drain       time.Duration // on stop, how long in-flight tasks may finish; default 30s
	Logger      *slog.Logger  // default slog.Default()
	// OnDone, if set, is called after each task with its outcome.
	OnDone func(t Task, o Outcome)
}

// Run claims and processes tasks until ctx ends. Then it stops claiming,
// lets in-flight tasks finish for up to Drain, and releases (re-queues)
// those that did not. It has no error to return: store errors are logged
// and retried with backoff, so a Redis restart does not stop the worker.
func (w *Worker) Run(ctx context.Context) {
	conc := w.Concurrency
	if conc <= 0 {
		conc = 16
	}
	drain := w.Drain
	if drain <= 0 {
		drain = 30 * time.Second
	}
	log := w.Logger
	if log == nil {
		log = slog.Default()
	}
	// work outlives ctx by up to drain so in-flight tasks can finish.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	slots := make(chan struct{}, conc)
	var wg sync.WaitGroup
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		slots <- struct{}{}
		free := 1 + conc - len(slots)
		tasks, err := w.Store.Claim(ctx, w.Consumer, free)
		<-slots
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("queue: claim failed", "consumer", w.Consumer, "err", err)
				sleep(ctx, backoff)
				backoff = min(2*backoff, 2*time.Second)
			}
			continue
		}
		backoff = 50 * time.Millisecond
		for _, t := range tasks {
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				w.handle(work, t, log)
			}()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drain):
		cancelWork()
		<-done
	}
}

// handle processes one task and records its outcome.
func (w *Worker) handle(ctx context.Context, t Task, log *slog.Logger) {
	res, err := w.Process(ctx, t.Kind, t.Payload)
	var perm *PermanentError
	var o Outcome
	var storeErr error
	// A background context lets the outcome reach the store even while
	// draining after cancellation.
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	switch {
	case err == nil:
		o = Outcome{Result: res}
		storeErr = w.Store.Complete(bg, t, o)
	case errors.As(err, &perm):
		o = Outcome{Err: err.Error()}
		storeErr = w.Store.Complete(bg, t, o)
	case ctx.Err() != nil:
		storeErr = w.Store.Release(bg, t)
		o = Outcome{Err: "released: " + err.Error()}
	default:
		o = Outcome{Err: err.Error()}
		storeErr = w.Store.Fail(bg, t, err)
	}
	if storeErr != nil {
		// The entry stays pending and another claim will retry it.
		log.Warn("queue: record outcome failed", "job", t.JobID, "index", t.Index, "err", storeErr)
	}
	if w.OnDone != nil {
		w.OnDone(t, o)
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
