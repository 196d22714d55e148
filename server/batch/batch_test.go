package batch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// double is a model that doubles its inputs and records batch sizes.
type double struct {
	mu     sync.Mutex
	sizes  []int
	keys   [][]int
	cost   time.Duration
	active atomic.Int32
	maxAct atomic.Int32
}

func (d *double) run(ctx context.Context, in []int) ([]int, error) {
	if n := d.active.Add(1); n > d.maxAct.Load() {
		d.maxAct.Store(n)
	}
	defer d.active.Add(-1)
	time.Sleep(d.cost)
	d.mu.Lock()
	d.sizes = append(d.sizes, len(in))
	d.keys = append(d.keys, append([]int(nil), in...))
	d.mu.Unlock()
	out := make([]int, len(in))
	for i, v := range in {
		out[i] = 2 * v
	}
	return out, nil
}

func TestSubmitResultsAndBatching(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		clients  int
		wantMaxB int // largest batch must be at least this
	}{
		{"serial batch of one", Config{MaxBatch: 1}, 8, 1},
		{"batches form under load", Config{MaxBatch: 8}, 32, 4},
		{"max delay fills batches", Config{MaxBatch: 16, MaxDelay: 20 * time.Millisecond}, 16, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &double{cost: 5 * time.Millisecond}
			b := New(tc.cfg, m.run)
			defer b.Close(context.Background())
			var wg sync.WaitGroup
			errs := make(chan error, tc.clients)
			for i := range tc.clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out, st, err := b.Submit(context.Background(), i, 0)
					if err != nil || out != 2*i || st.BatchSize < 1 {
						errs <- fmt.Errorf("input %d: out %d stats %+v err %v", i, out, st, err)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			maxB := 0
			for _, s := range m.sizes {
				maxB = max(maxB, s)
				if s > b.Config().MaxBatch {
					t.Errorf("batch of %d exceeds MaxBatch %d", s, b.Config().MaxBatch)
				}
			}
			if maxB < tc.wantMaxB {
				t.Errorf("largest batch %d, want >= %d (sizes %v)", maxB, tc.wantMaxB, m.sizes)
			}
			if m.maxAct.Load() != 1 {
				t.Errorf("model ran %d batches concurrently, want 1", m.maxAct.Load())
			}
		})
	}
}

func TestQueueFull(t *testing.T) {
	block := make(chan struct{})
	b := New(Config{MaxBatch: 1, QueueSize: 2}, func(ctx context.Context, in []int) ([]int, error) {
		<-block
		return in, nil
	})
	// First request runs (blocked), next two fill the queue, the fourth is rejected.
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); _, _, _ = b.Submit(context.Background(), i, 0) }()
		waitFor(t, func() bool { return b.Depth() == 0 || i > 0 })
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, func() bool { return b.Depth() == 2 })
	_, _, err := b.Submit(context.Background(), 9, 0)
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("err = %v, want ErrQueueFull", err)
	}
	close(block)
	wg.Wait()
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Submit(context.Background(), 1, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close err = %v, want ErrClosed", err)
	}
}

func TestCancelledRequestNeverRuns(t *testing.T) {
	block := make(chan struct{})
	var seen sync.Map
	b := New(Config{MaxBatch: 4}, func(ctx context.Context, in []int) ([]int, error) {
		for _, v := range in {
			seen.Store(v, true)
		}
		if in[0] == 0 {
			<-block
		}
		return in, nil
	})
	defer b.Close(context.Background())
	go func() { _, _, _ = b.Submit(context.Background(), 0, 0) }()
	waitFor(t, func() bool { _, ok := seen.Load(0); return ok })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, _, err := b.Submit(ctx, 42, 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if b.Depth() != 0 {
		t.Fatalf("depth %d after cancel, want 0", b.Depth())
	}
	close(block)
	if _, _, err := b.Submit(context.Background(), 7, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := seen.Load(42); ok {
		t.Fatal("cancelled request reached the model")
	}
}

func TestPaddingKeysNeverMixAndRoundRobin(t *testing.T) {
	m := &double{cost: 2 * time.Millisecond}
	b := New(Config{MaxBatch: 4, MaxDelay: 5 * time.Millisecond}, m.run)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := i % 3
			if _, _, err := b.Submit(context.Background(), i, key); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, batch := range m.keys {
		for _, v := range batch {
			if v%3 != batch[0]%3 {
				t.Fatalf("batch %v mixes padding keys", batch)
			}
		}
	}
}

func TestModelErrorAndPanic(t *testing.T) {
	tests := []struct {
		name string
		run  RunFunc[int, int]
	}{
		{"error", func(context.Context, []int) ([]int, error) { return nil, errors.New("boom") }},
		{"panic", func(context.Context, []int) ([]int, error) { panic("kaboom") }},
		{"short output", func(context.Context, []int) ([]int, error) { return nil, nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := New(Config{Name: "t"}, tc.run)
			defer b.Close(context.Background())
			if _, _, err := b.Submit(context.Background(), 1, 0); err == nil {
				t.Fatal("want error")
			}
		})
	}
}

// TestBadInputFailsOnlyItsRequest batches one bad input with good ones:
// the batch fails, each request is retried alone, and only the bad one
// gets an error.
func TestBadInputFailsOnlyItsRequest(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	run := func(_ context.Context, in []int) ([]int, error) {
		mu.Lock()
		sizes = append(sizes, len(in))
		mu.Unlock()
		out := make([]int, len(in))
		for i, v := range in {
			if v < 0 {
				return nil, fmt.Errorf("bad input %d", v)
			}
			out[i] = 2 * v
		}
		return out, nil
	}
	b := New(Config{Name: "t", MaxBatch: 4, MaxDelay: time.Second}, run)
	defer b.Close(context.Background())
	inputs := []int{1, 2, -3, 4}
	outs := make([]int, len(inputs))
	errs := make([]error, len(inputs))
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
		case v < 0 && (errs[i] == nil || !strings.Contains(errs[i].Error(), "bad input -3")):
			t.Errorf("input %d: err %v, want its own error", v, errs[i])
		case v >= 0 && (errs[i] != nil || outs[i] != 2*v):
			t.Errorf("input %d: out %d err %v, want %d", v, outs[i], errs[i], 2*v)
		}
	}
	if want := []int{4, 1, 1, 1, 1}; !slices.Equal(sizes, want) {
		t.Errorf("model calls with batch sizes %v, want %v (the batch, then each request alone)", sizes, want)
	}
}

func TestCloseDrainsQueue(t *testing.T) {
	m := &double{cost: 3 * time.Millisecond}
	b := New(Config{MaxBatch: 2}, m.run)
	var wg sync.WaitGroup
	var ok atomic.Int32
	for i := range 10 {
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
		t.Fatalf("model still active after Close")
	}
	total := 0
	for _, s := range m.sizes {
		total += s
	}
	if int(ok.Load()) != total {
		t.Fatalf("%d succeeded, model saw %d", ok.Load(), total)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(time.Millisecond)
	}
}

func BenchmarkSubmitParallel(b *testing.B) {
	bt := New(Config{MaxBatch: 32}, func(_ context.Context, in []int) ([]int, error) { return in, nil })
	defer bt.Close(context.Background())
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := bt.Submit(context.Background(), 1, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestFullestBucketFirst queues, behind a running batch, one request of
// bucket 1, five of bucket 2 and two of bucket 3 (MaxBatch 4, one
// worker). The fullest bucket goes first, then the next fullest, then
// bucket 1, passed over as many times as there were buckets queued,
// before the rest of bucket 2: round-robin would have run 1, 2, 3, 2.
func TestFullestBucketFirst(t *testing.T) {
	queue := []queuedReq{{10, 1}, {20, 2}, {21, 2}, {22, 2}, {23, 2}, {24, 2}, {30, 3}, {31, 3}}
	want := [][]int{{0}, {20, 21, 22, 23}, {30, 31}, {10}, {24}}
	if got := runQueued(t, Config{MaxBatch: 4, Workers: 1}, queue); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("batches %v, want %v", got, want)
	}
}

// queuedReq is one request of runQueued: its value and padding key.
type queuedReq struct{ v, key int }

// runQueued starts a batcher under cfg, holds its worker with a first
// request of value 0 and key 0, queues the requests in order behind it,
// then releases the worker and returns the batches run, in order. Every
// request must come back with its own value.
func runQueued(t *testing.T, cfg Config, queue []queuedReq) [][]int {
	t.Helper()
	release := make(chan struct{})
	var mu sync.Mutex
	var order [][]int
	run := func(ctx context.Context, in []int) ([]int, error) {
		if in[0] == 0 {
			<-release // the first batch holds the worker while the queue fills
		}
		mu.Lock()
		order = append(order, slices.Clone(in))
		mu.Unlock()
		return in, nil
	}
	b := New(cfg, run)
	var wg sync.WaitGroup
	submit := func(v, key int) {
		wg.Go(func() {
			out, _, err := b.Submit(context.Background(), v, key)
			if err != nil || out != v {
				t.Errorf("request %d: got %d, %v", v, out, err)
			}
		})
	}
	submit(0, 0)
	waitFor(t, func() bool { return b.busy1() })
	for i, q := range queue {
		submit(q.v, q.key)
		waitFor(t, func() bool { return b.queued() == i+1 })
	}
	close(release)
	wg.Wait()
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return order
}

// TestMergeKeys checks that a batch with room takes the requests of the
// MergeKeys keys below its own, nearest first and never a key above, and
// that the bucket able to form the largest batch goes first.
func TestMergeKeys(t *testing.T) {
	queue := []queuedReq{{50, 5}, {51, 5}, {52, 5}, {40, 4}, {41, 4}, {30, 3}, {31, 3}, {32, 3}, {33, 3}, {10, 1}}
	cases := []struct {
		merge int
		want  [][]int
	}{
		// Equal keys only: the fullest bucket (3) first.
		{0, [][]int{{0}, {30, 31, 32, 33}, {50, 51, 52}, {40, 41}, {10}}},
		// Key 4 with key 3 makes 6, more than key 5 with key 4 (5).
		{1, [][]int{{0}, {40, 41, 30, 31, 32, 33}, {50, 51, 52}, {10}}},
		// Two keys down: key 5 takes 4 and 3 up to MaxBatch, nearest first;
		// key 3 keeps what is left and takes key 1.
		{2, [][]int{{0}, {50, 51, 52, 40, 41, 30, 31, 32}, {33, 10}}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint("merge ", c.merge), func(t *testing.T) {
			order := runQueued(t, Config{MaxBatch: 8, Workers: 1, MergeKeys: c.merge}, queue)
			if fmt.Sprint(order) != fmt.Sprint(c.want) {
				t.Errorf("batches %v, want %v", order, c.want)
			}
			// Plan forms the same batches from the same queue.
			keys := make([]int, len(queue))
			for i, q := range queue {
				keys[i] = q.key
			}
			var planned [][]int
			for _, idx := range Plan(Config{MaxBatch: 8, MergeKeys: c.merge}, keys) {
				var vs []int
				for _, i := range idx {
					vs = append(vs, queue[i].v)
				}
				planned = append(planned, vs)
			}
			if fmt.Sprint(planned) != fmt.Sprint(c.want[1:]) {
				t.Errorf("Plan: batches %v, want %v", planned, c.want[1:])
			}
		})
	}
}

// queued reports how many requests are in the queue; for tests. Unlike
// Depth, which counts admitted requests, it counts them once appended, so
// a test that waits for it knows their order.
func (b *Batcher[In, Out]) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// busy1 reports whether a batch is running; for tests.
func (b *Batcher[In, Out]) busy1() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.busy > 0
}
