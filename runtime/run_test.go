package runtime

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

// onceDone is a context that is not done at the first Err check and done
// from then on, so the cancellation lands between Run's check and ORT's run.
type onceDone struct {
	context.Context
	mu    sync.Mutex
	calls int
	done  chan struct{}
}

func (c *onceDone) Done() <-chan struct{} { return c.done }

func (c *onceDone) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls == 1 {
		return nil
	}
	return context.Canceled
}

func TestRunCancellation(t *testing.T) {
	env := openEnv(t)
	s, err := env.NewSessionFromBytes(context.Background(), "chain", chainModel(t, 32, 4), SessionOptions{Device: CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x := mustTensor(t, []int64{32, 32}, make([]float32, 32*32))
	in := []NamedTensor{{"X", x}}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Run(ctx, in, []string{"Y"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before run: %v", err)
	}
	// Cancelled after the check: ORT's terminate flag stops the run.
	late := &onceDone{Context: context.Background(), done: make(chan struct{})}
	close(late.done)
	_, err = s.Run(late, in, []string{"Y"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("terminated run: %v", err)
	}
	// A live deadline context runs normally and leaves nothing behind.
	dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
	defer dcancel()
	outs, err := s.Run(dctx, in, []string{"Y"})
	if err != nil {
		t.Fatal(err)
	}
	CloseAll(outs...)
}

func TestConcurrentRuns(t *testing.T) {
	env := openEnv(t)
	s, err := env.NewSessionFromBytes(context.Background(), "add", addModel(t), SessionOptions{Device: CPU, IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				x, _ := NewTensor([]int64{1, 3}, []float32{float32(g), 1, 2})
				outs, err := s.Run(context.Background(), []NamedTensor{{"X", x}, {"Y", x}}, []string{"Z"})
				if err == nil {
					if d, _ := Data[float32](outs[0]); d[0] != float32(2*g) {
						err = errors.New("wrong result under concurrency")
					}
				}
				if err != nil {
					errs <- err
					return
				}
				CloseAll(append(outs, x)...)
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func threadCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatalf("counting threads: %v", err)
	}
	return len(ents)
}

// TestIntraOpThreads checks that IntraOpThreads sizes the session's own
// thread pool: ORT starts n-1 worker threads per session.
func TestIntraOpThreads(t *testing.T) {
	env := openEnv(t)
	model := chainModel(t, 64, 2)
	grow := func(n int) int {
		before := threadCount(t)
		s, err := env.NewSessionFromBytes(context.Background(), "chain", model, SessionOptions{Device: CPU, IntraOpThreads: n})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return threadCount(t) - before
	}
	one, five := grow(1), grow(5)
	if five-one < 4 {
		t.Fatalf("IntraOpThreads=5 added %d threads, IntraOpThreads=1 added %d; want ≥4 more", five, one)
	}
}
