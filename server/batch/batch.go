package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrQueueFull reports that the bounded queue has no free slot; the caller
// should retry later (the server answers 429 with Retry-After).
var ErrQueueFull = errors.New("batch: queue full")

// ErrClosed reports that the batcher no longer admits requests because it
// is shutting down (the server answers 503).
var ErrClosed = errors.New("batch: closed")

// RunFunc executes one batch on the model and returns one output per input,
// in order. It runs at most Config.Workers batches at once: with Workers =
// 1 it is never called concurrently, with Workers = N by up to N
// goroutines at once, so it must then be safe for concurrent use. The
// callers are the worker goroutines, and Submit's own goroutine for a
// request that arrives when the queue is empty and a worker is idle.
type RunFunc[In, Out any] func(ctx context.Context, in []In) ([]Out, error)

// Config sets the batching policy. Zero fields take the documented defaults.
type Config struct {
	// Name labels the batcher in errors and metrics (for example "vqa").
	Name string
	// MaxBatch is the largest number of requests run together; default 8.
	MaxBatch int
	// MaxDelay is how long the oldest queued request may wait for the
	// batch to fill while the model is idle; 0 (the default) dispatches as
	// soon as the model is free, so requests that arrive during a run
	// are batched and a lone request pays no added latency.
	MaxDelay time.Duration
	// QueueSize bounds the requests waiting (not yet running); default 256.
	// A full queue rejects new requests with ErrQueueFull.
	QueueSize int
	// Workers is how many batches may run at once, each on its own
	// goroutine; default 1. A worker takes the next batch as soon as it is
	// free, so requests are batched together once every worker is busy.
	Workers int
	// OnBatch, if set, is called after every batch with its size, the
	// model execution time and the error it returned.
	OnBatch func(size int, run time.Duration, err error)
	// HeavyKey marks heavy requests: those submitted with a key ≥
	// HeavyKey (with LengthKey keys, long prompts). 0, the default, marks
	// none.
	HeavyKey int
	// HeavyWorkers is how many workers may run heavy batches at once:
	// default Workers−1 (at least 1), so that with several workers long
	// prompts never hold every worker and the short requests queued behind
	// them keep a worker of their own.
	HeavyWorkers int
	// MergeKeys lets a batch with room below MaxBatch take requests of up
	// to MergeKeys keys below its own as well, nearest key first: with
	// length keys (LengthKey), shorter prompts padded up to the batch's
	// longest. A bucket of a few requests then rides with its neighbour
	// instead of forming a batch of its own later; each key step pads a
	// merged row by at most one more LengthStep. 0, the default, batches
	// equal keys only. Keys must order requests by length for it to be
	// used.
	MergeKeys int
}

// withDefaults returns c with the documented defaults applied.
func (c Config) withDefaults() Config {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 8
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 256
	}
	if c.MaxDelay < 0 {
		c.MaxDelay = 0
	}
	if c.Workers <= 0 {
		c.Workers = 1
	}
	if c.HeavyWorkers <= 0 {
		c.HeavyWorkers = max(1, c.Workers-1)
	}
	c.MergeKeys = max(c.MergeKeys, 0)
	return c
}

// Plan returns the batches the policy of cfg forms from a queue that
// holds requests with the given keys, in that order, while every worker
// is busy: index lists into keys, in the order the batches would run. A
// benchmark's raw baseline uses it to run the batches the server runs.
func Plan(cfg Config, keys []int) [][]int {
	b := &Batcher[int, struct{}]{cfg: cfg.withDefaults(), slots: make(chan struct{}, len(keys)), passed: map[int]int{}}
	for i, k := range keys {
		b.slots <- struct{}{}
		b.pending = append(b.pending, &request[int, struct{}]{in: i, key: k, ctx: context.Background()})
	}
	var out [][]int
	for len(b.pending) > 0 {
		key, _, _, ok := b.pickKey()
		if !ok {
			break // cannot happen: with nothing running, every key may run
		}
		var batch []int
		for _, r := range b.take(key) {
			batch = append(batch, r.in)
		}
		out = append(out, batch)
	}
	return out
}

// heavy reports whether key marks a heavy request.
func (c Config) heavy(key int) bool { return c.HeavyKey > 0 && key >= c.HeavyKey }

// Stats describes how one request was served.
type Stats struct {
	QueueWait time.Duration // time from Submit to the start of its batch
	Run       time.Duration // model execution time of its batch
	BatchSize int           // number of requests in its batch
}

// request is one queued call, owned by the queue until taken into a batch.
type request[In, Out any] struct {
	in       In               // the model input
	key      int              // padding bucket; only equal keys share a batch
	ctx      context.Context  // the caller's context; checked before running
	enqueued time.Time        // when Submit admitted it
	done     chan result[Out] // buffered (1): receives exactly one result
}

// result is what the batch goroutine hands back to a waiting Submit.
type result[Out any] struct {
	out   Out   // the model output for this request
	stats Stats // timing of its batch
	err   error // model or context error
}

// Batcher groups concurrent requests into batches for one model.
// Config.Workers goroutines take batches from one queue; they are the only
// callers of RunFunc.
type Batcher[In, Out any] struct {
	cfg Config           // policy, defaults applied
	run RunFunc[In, Out] // the model call

	slots chan struct{} // admission semaphore: one token per queued request
	wake  chan struct{} // buffered (1): nudges the loop when work arrives

	mu      sync.Mutex          // guards pending, closed, passed, heavy and busy
	pending []*request[In, Out] // queued requests in arrival order
	closed  bool                // no more admissions once set
	passed  map[int]int         // padding key → batches taken while it waited
	heavy   int                 // heavy batches running now (Config.HeavyKey)
	busy    int                 // batches running now, at most Config.Workers
	direct  sync.WaitGroup      // lone requests running on their Submit goroutine

	runCtx    context.Context    // context for model calls; cancelled by Abort
	runCancel context.CancelFunc // cancels runCtx
	stopped   chan struct{}      // closed when every worker goroutine has exited
}

// New starts a batcher that calls run with batches built under cfg. Call
// Close to drain it and stop its goroutines.
func New[In, Out any](cfg Config, run RunFunc[In, Out]) *Batcher[In, Out] {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	b := &Batcher[In, Out]{
		cfg:       cfg,
		run:       run,
		slots:     make(chan struct{}, cfg.QueueSize),
		wake:      make(chan struct{}, 1),
		runCtx:    ctx,
		runCancel: cancel,
		stopped:   make(chan struct{}),
		passed:    map[int]int{},
	}
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(b.loop)
	}
	go func() {
		wg.Wait()
		b.direct.Wait() // no new one starts: the workers exit only once closed is set
		b.runCancel()
		close(b.stopped)
	}()
	return b
}

// Config returns the policy in force, with defaults applied.
func (b *Batcher[In, Out]) Config() Config { return b.cfg }

// Depth returns the number of requests waiting to run.
func (b *Batcher[In, Out]) Depth() int { return len(b.slots) }

// Submit queues in with padding bucket key, waits for its batch to run and
// returns its output. It returns ErrQueueFull at once when the queue is
// full and ErrClosed after Close. If ctx ends before the batch starts, the
// request is removed from the queue and ctx.Err() is returned.
func (b *Batcher[In, Out]) Submit(ctx context.Context, in In, key int) (Out, Stats, error) {
	var zero Out
	if err := ctx.Err(); err != nil {
		return zero, Stats{}, err
	}
	select {
	case b.slots <- struct{}{}:
	default:
		return zero, Stats{}, fmt.Errorf("%s: %w", b.cfg.Name, ErrQueueFull)
	}
	r := &request[In, Out]{in: in, key: key, ctx: ctx, enqueued: time.Now(), done: make(chan result[Out], 1)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		<-b.slots
		return zero, Stats{}, fmt.Errorf("%s: %w", b.cfg.Name, ErrClosed)
	}
	if b.runsAlone(key) {
		return b.runDirect(r)
	}
	b.pending = append(b.pending, r)
	b.mu.Unlock()
	b.nudge()
	select {
	case res := <-r.done:
		return res.out, res.stats, res.err
	case <-ctx.Done():
		// Still queued, it leaves the queue; already running, the model
		// call is not interrupted for one member of a batch and the result
		// is dropped. Either way the caller gets ctx's error.
		b.remove(r)
		return zero, Stats{}, ctx.Err()
	}
}

// runsAlone reports whether a request with key may run at once on the
// caller's goroutine: nothing is queued (so it jumps no one), a worker is
// idle, no batch would wait to fill (MaxDelay 0), and a heavy key is
// within its share. It saves the handoffs to a worker and back, which are
// most of what the batcher adds to a request alone. The caller holds mu.
func (b *Batcher[In, Out]) runsAlone(key int) bool {
	return len(b.pending) == 0 && b.busy < b.cfg.Workers && b.cfg.MaxDelay == 0 &&
		(!b.cfg.heavy(key) || b.heavy < b.cfg.HeavyWorkers)
}

// runDirect runs r as a batch of one on the caller's goroutine, counted
// as a running batch like a worker's. The caller holds mu, which it
// releases.
func (b *Batcher[In, Out]) runDirect(r *request[In, Out]) (Out, Stats, error) {
	heavy := b.cfg.heavy(r.key)
	b.busy++
	if heavy {
		b.heavy++
	}
	b.direct.Add(1)
	b.mu.Unlock()
	<-b.slots // it never waits in the queue
	b.execute([]*request[In, Out]{r})
	b.mu.Lock()
	b.busy--
	if heavy {
		b.heavy--
	}
	b.mu.Unlock()
	b.direct.Done()
	b.nudge() // a worker may have waited for the batch slot
	res := <-r.done
	return res.out, res.stats, res.err
}

// nudge wakes the loop without blocking.
func (b *Batcher[In, Out]) nudge() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// remove takes r out of the queue if it is still there and frees its slot.
func (b *Batcher[In, Out]) remove(r *request[In, Out]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, p := range b.pending {
		if p == r {
			b.pending = append(b.pending[:i], b.pending[i+1:]...)
			<-b.slots
			return
		}
	}
}

// Close stops admitting requests, runs every queued request, and returns
// when the loop has exited or ctx ends; on ctx's end the model call in
// flight is cancelled and the queued requests fail with ErrClosed.
func (b *Batcher[In, Out]) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.nudge()
	select {
	case <-b.stopped:
		return nil
	case <-ctx.Done():
		b.runCancel()
		<-b.stopped
		return fmt.Errorf("%s: drain: %w", b.cfg.Name, ctx.Err())
	}
}

// loop is one worker: it takes batches and runs them until the batcher
// is closed and drained. On its way out it wakes the next worker, since one
// nudge wakes only one waiting worker.
func (b *Batcher[In, Out]) loop() {
	defer b.nudge()
	for {
		batch, ok := b.next()
		if !ok {
			return
		}
		if len(batch) > 0 {
			b.execute(batch)
			b.mu.Lock()
			b.busy--
			if b.cfg.heavy(batch[0].key) {
				b.heavy--
			}
			b.mu.Unlock()
			b.nudge() // a batch may have waited for this one's worker or heavy share
		}
	}
}

// next blocks until a batch is ready and takes it from the queue. It
// returns ok=false when the batcher is closed and the queue is empty.
func (b *Batcher[In, Out]) next() ([]*request[In, Out], bool) {
	for {
		b.mu.Lock()
		if len(b.pending) == 0 {
			closed := b.closed
			b.mu.Unlock()
			if closed {
				return nil, false
			}
			if !b.waitWake(0) {
				return nil, false
			}
			continue
		}
		key, count, oldest, ok := b.pickKey()
		if !ok || b.busy >= b.cfg.Workers { // only heavy requests wait, and heavy batches have their share; or lone requests run on every worker's share
			b.mu.Unlock()
			if !b.waitWake(0) {
				return nil, false
			}
			continue
		}
		wait := b.cfg.MaxDelay - time.Since(oldest)
		if count < b.cfg.MaxBatch && wait > 0 && !b.closed {
			b.mu.Unlock()
			b.waitWake(wait)
			continue
		}
		batch := b.take(key)
		if len(batch) > 0 {
			b.busy++
			if b.cfg.heavy(batch[0].key) { // as loop counts it down: key's own requests may all have ended
				b.heavy++
			}
		}
		b.mu.Unlock()
		return batch, true
	}
}

// waitWake blocks until nudged, or until d passes when d > 0. It returns
// false when the run context is cancelled (hard stop).
func (b *Batcher[In, Out]) waitWake(d time.Duration) bool {
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-b.wake:
	case <-timer:
	case <-b.runCtx.Done():
		b.failPending()
		return false
	}
	return true
}

// failPending answers every queued request with ErrClosed.
func (b *Batcher[In, Out]) failPending() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.pending {
		r.done <- result[Out]{err: fmt.Errorf("%s: %w", b.cfg.Name, ErrClosed)}
		<-b.slots
	}
	b.pending = nil
}

// pickKey chooses the padding bucket to serve next: the fullest (the
// one with the oldest request among equals), so that under load batches
// come out as large as the queue allows, unless a bucket has been passed
// over as many times as there are buckets queued; then the longest
// passed goes first (the one with the oldest request among equals), so
// no bucket waits for more batches than round-robin would make it.
// Heavy keys are left out while HeavyWorkers heavy batches run. It
// returns the key, how many requests it holds and the arrival time of its
// oldest request; ok is false when no queued key may run now. The caller
// holds mu.
func (b *Batcher[In, Out]) pickKey() (key, count int, oldest time.Time, ok bool) {
	var keys []int
	seen := map[int]int{}
	first := map[int]time.Time{}
	capped := b.heavy >= b.cfg.HeavyWorkers
	for _, r := range b.pending {
		if capped && b.cfg.heavy(r.key) {
			continue
		}
		if _, ok := seen[r.key]; !ok {
			keys = append(keys, r.key) // in order of their oldest request
			first[r.key] = r.enqueued
		}
		seen[r.key]++
	}
	if len(keys) == 0 {
		return 0, 0, time.Time{}, false
	}
	// size is the batch a key can form: its own requests and those of
	// the MergeKeys keys below it, up to MaxBatch.
	size := func(k int) int {
		n := seen[k]
		for j := 1; j <= b.cfg.MergeKeys; j++ {
			n += seen[k-j]
		}
		return min(n, b.cfg.MaxBatch)
	}
	key = keys[0]
	due := b.passed[key] >= len(keys)
	for _, k := range keys[1:] {
		switch kDue := b.passed[k] >= len(keys); {
		case kDue && !due, kDue && b.passed[k] > b.passed[key], !due && !kDue && size(k) > size(key):
			key, due = k, kDue
		}
	}
	return key, size(key), first[key], true
}

// take removes up to MaxBatch live requests with the given key, oldest
// first, then, while there is room, those of the MergeKeys keys below it,
// nearest key first; it drops requests whose context already ended. The
// caller holds mu.
func (b *Batcher[In, Out]) take(key int) []*request[In, Out] {
	batch := make([]*request[In, Out], 0, b.cfg.MaxBatch)
	for k := key; k >= key-b.cfg.MergeKeys && len(batch) < b.cfg.MaxBatch; k-- {
		batch = b.takeKey(k, batch)
	}
	// Every other bucket still queued was passed over once more.
	delete(b.passed, key)
	queued := map[int]bool{}
	for _, r := range b.pending {
		if r.key != key {
			queued[r.key] = true
		}
	}
	for k := range b.passed {
		if !queued[k] {
			delete(b.passed, k)
		}
	}
	for k := range queued {
		b.passed[k]++
	}
	return batch
}

// takeKey moves live requests with key k from the queue into batch,
// oldest first, until batch holds MaxBatch, and fails those whose context
// already ended. The caller holds mu.
func (b *Batcher[In, Out]) takeKey(k int, batch []*request[In, Out]) []*request[In, Out] {
	keep := b.pending[:0]
	for _, r := range b.pending {
		switch {
		case r.key != k || len(batch) == b.cfg.MaxBatch:
			keep = append(keep, r)
		case r.ctx.Err() != nil:
			r.done <- result[Out]{err: r.ctx.Err()}
			<-b.slots
		default:
			batch = append(batch, r)
			<-b.slots
		}
	}
	clear(b.pending[len(keep):])
	b.pending = keep
	return batch
}

// execute runs one batch and hands each request its result. When a batch
// of several requests fails (and the batcher is not being aborted), each
// request is run again on its own, so one bad input fails only its own
// request rather than every request that happened to share its batch.
func (b *Batcher[In, Out]) execute(batch []*request[In, Out]) {
	in := make([]In, len(batch))
	for i, r := range batch {
		in[i] = r.in
	}
	start := time.Now()
	out, err := b.runChecked(in)
	elapsed := time.Since(start)
	if err != nil && len(batch) > 1 && b.runCtx.Err() == nil {
		for _, r := range batch {
			b.execute([]*request[In, Out]{r})
		}
		return
	}
	for i, r := range batch {
		res := result[Out]{stats: Stats{QueueWait: start.Sub(r.enqueued), Run: elapsed, BatchSize: len(batch)}, err: err}
		if err == nil {
			res.out = out[i]
		}
		r.done <- res
	}
}

// runChecked runs the model on in, checks it returned one output per
// input and reports the batch to OnBatch.
func (b *Batcher[In, Out]) runChecked(in []In) ([]Out, error) {
	start := time.Now()
	out, err := b.safeRun(in)
	if err == nil && len(out) != len(in) {
		err = fmt.Errorf("%s: model returned %d outputs for %d inputs", b.cfg.Name, len(out), len(in))
	}
	if b.cfg.OnBatch != nil {
		b.cfg.OnBatch(len(in), time.Since(start), err)
	}
	return out, err
}

// safeRun calls the model, turning a panic into an error so one bad batch
// cannot take the server down.
func (b *Batcher[In, Out]) safeRun(in []In) (out []Out, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: model panicked: %v", b.cfg.Name, p)
		}
	}()
	out, err = b.run(b.runCtx, in)
	if err != nil {
		err = fmt.Errorf("%s: run batch of %d: %w", b.cfg.Name, len(in), err)
	}
	return out, err
}
