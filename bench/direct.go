package bench

import (
	"context"
	"sync"
	"time"
)

// DirectConfig describes a direct run: the model called in-process, with
// no HTTP, JSON or batcher. Zero fields take the defaults.
type DirectConfig struct {
	Name string // label in the report; default "direct"
	// Batches are the calls, as index lists into the request mix, taken
	// in turn (cycling) by the callers. Required: a run without batches
	// makes no call.
	Batches [][]int
	// Callers is how many goroutines call at once; default 1.
	Callers int
	// Items stops the run after this many items; default 1000.
	Items int
	// Duration stops the run after this long; default 30s.
	Duration time.Duration
}

// Direct calls run on cfg.Batches from cfg.Callers goroutines, each taking
// the next batch when its last call returns, until cfg.Items items are
// done or cfg.Duration passes: the raw model baseline. Latencies are per
// call and throughput is in items. Calls running when the duration passes
// are drained (finished and counted), as in Run; cancelling ctx cancels
// them.
func Direct(ctx context.Context, cfg DirectConfig, run func(ctx context.Context, batch []int) error) Report {
	if cfg.Name == "" {
		cfg.Name = "direct"
	}
	if cfg.Callers <= 0 {
		cfg.Callers = 1
	}
	if cfg.Items <= 0 {
		cfg.Items = 1000
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 30 * time.Second
	}
	largest := 0
	for _, b := range cfg.Batches {
		largest = max(largest, len(b))
	}
	stop, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var (
		mu    sync.Mutex
		next  int // the next batch to take
		taken int // items taken so far
		all   []sample
		wg    sync.WaitGroup
	)
	take := func() ([]int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(cfg.Batches) == 0 || taken >= cfg.Items || stop.Err() != nil {
			return nil, false
		}
		b := cfg.Batches[next%len(cfg.Batches)]
		next++
		taken += len(b)
		return b, true
	}
	cpu := startCPU()
	start := time.Now()
	for range cfg.Callers {
		wg.Go(func() {
			for b, ok := take(); ok; b, ok = take() {
				t0 := time.Now()
				s := sample{items: len(b)}
				if err := run(ctx, b); err != nil {
					s.err = "model"
					if ctx.Err() != nil {
						s.err = "cancelled"
					}
				}
				s.lat, s.drained = time.Since(t0), stop.Err() != nil
				mu.Lock()
				all = append(all, s)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	rep := summarise(all, elapsed)
	rep.CPU = cpu.stop(elapsed)
	rep.Name, rep.Mode, rep.Clients, rep.BatchSize = cfg.Name, "direct", cfg.Callers, largest
	return rep
}

// Singles returns n batches of one item each, [0], [1], …, [n−1]: a
// serial pass over a mix of n requests.
func Singles(n int) [][]int {
	out := make([][]int, n)
	for i := range out {
		out[i] = []int{i}
	}
	return out
}

// Chunks splits each group of request indices into batches of at most
// size, in order: groups are requests that batch together (for a server
// that batches by prompt length, one length bucket each).
func Chunks(groups [][]int, size int) [][]int {
	size = max(size, 1)
	var out [][]int
	for _, g := range groups {
		for len(g) > 0 {
			n := min(size, len(g))
			out = append(out, g[:n:n])
			g = g[n:]
		}
	}
	return out
}
