package batch

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gate is a model whose calls block until the gate opens, counting how
// many run at once.
type gate struct {
	open   chan struct{}
	once   sync.Once
	active atomic.Int32
	peak   atomic.Int32
	calls  atomic.Int32
}

// newGate returns a closed gate that opens at the latest when the test
// ends, so a failing test never leaves Close waiting on the model.
func newGate(t *testing.T) *gate {
	g := &gate{open: make(chan struct{})}
	t.Cleanup(g.release)
	return g
}

// release opens the gate; it may be called more than once.
func (g *gate) release() {
	g.once.Do(func() { close(g.open) })
}

func (g *gate) run(ctx context.Context, in []int) ([]int, error) {
	n := g.active.Add(1)
	defer g.active.Add(-1)
	g.calls.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out := make([]int, len(in))
	for i, v := range in {
		out[i] = 2 * v
	}
	return out, nil
}

// TestWorkersRunBatchesConcurrently checks that Workers batches run at
// once, never more, and that requests arriving while every worker is busy
// wait to be batched.
func TestWorkersRunBatchesConcurrently(t *testing.T) {
	for _, workers := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			g := newGate(t)
			b := New(Config{MaxBatch: 8, Workers: workers}, g.run)
			defer b.Close(context.Background())
			defer g.release()
			var wg sync.WaitGroup
			errs := make([]error, 3*workers)
			submit := func(i int) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out, _, err := b.Submit(context.Background(), i, 0)
					if err == nil && out != 2*i {
						err = fmt.Errorf("input %d: got %d", i, out)
					}
					errs[i] = err
				}()
			}
			// One request per worker: each starts its own batch.
			for i := range workers {
				submit(i)
				waitFor(t, func() bool { return g.active.Load() == int32(i+1) })
			}
			// With every worker busy, the rest queue up.
			for i := workers; i < 3*workers; i++ {
				submit(i)
			}
			waitFor(t, func() bool { return b.Depth() == 2*workers })
			if p := g.peak.Load(); p != int32(workers) {
				t.Errorf("%d batches ran at once, want %d", p, workers)
			}
			g.release()
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			if p := g.peak.Load(); p > int32(workers) {
				t.Errorf("%d batches ran at once, want at most %d", p, workers)
			}
			// The 2×workers queued requests fit in at most workers
			// batches of up to 8, so fewer calls than requests were made.
			if c := g.calls.Load(); c > int32(2*workers) {
				t.Errorf("%d model calls for %d requests, want at most %d", c, 3*workers, 2*workers)
			}
		})
	}
}

// TestWorkersCloseDrains closes a batcher with several workers under
// load: every admitted request is answered (those submitted after Close
// get ErrClosed) and Close waits for all workers.
func TestWorkersCloseDrains(t *testing.T) {
	m := &double{cost: 2 * time.Millisecond}
	b := New(Config{MaxBatch: 2, Workers: 3}, m.run)
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := b.Submit(context.Background(), i, 0); err == nil {
				ok.Add(1)
			}
		}()
	}
	waitFor(t, func() bool { return b.Depth() > 0 })
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if n := m.active.Load(); n != 0 {
		t.Fatalf("%d model calls still active after Close", n)
	}
	total := 0
	for _, s := range m.sizes {
		total += s
	}
	if int(ok.Load()) != total || total == 0 {
		t.Fatalf("%d succeeded, model saw %d", ok.Load(), total)
	}
	if _, _, err := b.Submit(context.Background(), 1, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after Close: %v, want ErrClosed", err)
	}
}

// TestWorkersHardStop ends Close's context while every worker is blocked
// in the model: the calls are cancelled, queued requests fail with
// ErrClosed and Close returns once all workers have exited.
func TestWorkersHardStop(t *testing.T) {
	g := newGate(t)
	b := New(Config{MaxBatch: 1, Workers: 2}, g.run)
	errs := make(chan error, 5)
	for i := range 5 {
		go func() {
			_, _, err := b.Submit(context.Background(), i, 0)
			errs <- err
		}()
	}
	waitFor(t, func() bool { return g.active.Load() == 2 && b.Depth() == 3 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close: %v, want context.Canceled", err)
	}
	for range 5 {
		if err := <-errs; err == nil {
			t.Error("a request succeeded after a hard stop")
		}
	}
	if n := g.active.Load(); n != 0 {
		t.Fatalf("%d model calls still active after Close", n)
	}
}

// TestWorkersBadInputIsolated repeats the failed-batch isolation with
// several workers: only the bad request fails.
func TestWorkersBadInputIsolated(t *testing.T) {
	run := func(_ context.Context, in []int) ([]int, error) {
		out := make([]int, len(in))
		for i, v := range in {
			if v < 0 {
				return nil, fmt.Errorf("bad input %d", v)
			}
			out[i] = 2 * v
		}
		return out, nil
	}
	b := New(Config{Name: "t", MaxBatch: 4, Workers: 3, MaxDelay: 50 * time.Millisecond}, run)
	defer b.Close(context.Background())
	inputs := []int{1, 2, -3, 4, 5, -6, 7, 8}
	errs := make([]error, len(inputs))
	outs := make([]int, len(inputs))
	var wg sync.WaitGroup
	for i, v := range inputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], _, errs[i] = b.Submit(context.Background(), v, 0)
		}()
	}
	wg.Wait()
	for i, v := range inputs {
		switch {
		case v < 0 && (errs[i] == nil || !strings.Contains(errs[i].Error(), fmt.Sprintf("bad input %d", v))):
			t.Errorf("input %d: err %v, want its own error", v, errs[i])
		case v >= 0 && (errs[i] != nil || outs[i] != 2*v):
			t.Errorf("input %d: out %d err %v, want %d", v, outs[i], errs[i], 2*v)
		}
	}
}

// TestHeavyShare checks Config.HeavyWorkers: with two workers, two long
// (heavy) requests held in the model take one worker only, and a short
// request sent after them runs on the other and returns while they wait.
// With no HeavyKey the second long request takes the second worker and
// the short one waits.
func TestHeavyShare(t *testing.T) {
	for _, c := range []struct {
		name      string
		heavyKey  int
		shortRuns bool
	}{{"heavy share", 10, true}, {"no heavy key", 0, false}} {
		t.Run(c.name, func(t *testing.T) {
			release := make(chan struct{})
			started := make(chan int, 4)
			run := func(ctx context.Context, in []int) ([]int, error) {
				started <- in[0]
				if in[0] >= 10 {
					<-release
				}
				return in, nil
			}
			b := New(Config{Name: "t", MaxBatch: 1, Workers: 2, HeavyKey: c.heavyKey}, run)
			defer func() {
				if err := b.Close(context.Background()); err != nil {
					t.Error(err)
				}
			}()
			defer close(release)
			errs := make(chan error, 2)
			for _, k := range []int{10, 11} {
				go func() { _, _, err := b.Submit(context.Background(), k, k); errs <- err }()
				if k == 10 {
					<-started // the first long request holds a worker
				}
			}
			time.Sleep(50 * time.Millisecond) // let a free worker take the second one if it may
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			out, _, err := b.Submit(ctx, 1, 1)
			if c.shortRuns && (err != nil || out != 1) {
				t.Fatalf("short request behind two long ones: %v, %v; want it run on the free worker", out, err)
			}
			if !c.shortRuns && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("short request: %v, %v; want it to wait for a worker", out, err)
			}
		})
	}
}

// onCaller reports whether the calling goroutine is inside Submit: a
// lone request that the batcher runs on its caller's goroutine.
func onCaller() bool {
	buf := make([]byte, 64<<10)
	return strings.Contains(string(buf[:runtime.Stack(buf, false)]), ").Submit(")
}

// TestLoneRequestRunsOnCaller checks where requests run: a request that
// finds the queue empty and a worker idle runs on its own goroutine (no
// handoff to a worker and back); one that arrives while every worker is
// busy queues for a worker; with MaxDelay set every request goes through
// the queue, so that a batch may fill.
func TestLoneRequestRunsOnCaller(t *testing.T) {
	for _, c := range []struct {
		name     string
		maxDelay time.Duration
		want     []bool // per request: ran on its caller's goroutine
	}{
		{"dispatch when free", 0, []bool{true, false}},
		{"max delay", time.Millisecond, []bool{false, false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newGate(t)
			var mu sync.Mutex
			where := map[int]bool{}
			b := New(Config{MaxBatch: 4, Workers: 1, MaxDelay: c.maxDelay}, func(ctx context.Context, in []int) ([]int, error) {
				mu.Lock()
				for _, v := range in {
					where[v] = onCaller()
				}
				mu.Unlock()
				return g.run(ctx, in)
			})
			defer b.Close(context.Background())
			var wg sync.WaitGroup
			for i := range c.want {
				wg.Go(func() {
					if out, st, err := b.Submit(context.Background(), i, 0); err != nil || out != 2*i || st.BatchSize != 1 {
						t.Errorf("request %d: %d, %+v, %v", i, out, st, err)
					}
				})
				if i == 0 {
					waitFor(t, func() bool { return g.active.Load() == 1 })
				} else {
					waitFor(t, func() bool { return b.Depth() == 1 })
				}
			}
			g.release()
			wg.Wait()
			for i, w := range c.want {
				if where[i] != w {
					t.Errorf("request %d ran on its caller's goroutine: %v, want %v", i, where[i], w)
				}
			}
			if p := g.peak.Load(); p != 1 {
				t.Errorf("%d batches ran at once with one worker", p)
			}
		})
	}
}
