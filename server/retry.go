package server

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/medgr2/medgr2/server/batch"
)

// Retry-After bounds, in seconds.
const (
	minRetryAfter = 1
	maxRetryAfter = 120
)

// throughputWindow is how far back the throughput meter looks, in seconds.
const throughputWindow = 10

// throughput counts items finished by the models over a sliding window of
// one-second buckets.
type throughput struct {
	now func() time.Time // clock

	mu     sync.Mutex              // guards the rings
	counts [throughputWindow]int64 // items finished in each second
	secs   [throughputWindow]int64 // Unix second each bucket counts
}

// add records n items finished now.
func (t *throughput) add(n int) {
	sec := t.now().Unix()
	i := sec % throughputWindow
	t.mu.Lock()
	if t.secs[i] != sec {
		t.secs[i], t.counts[i] = sec, 0
	}
	t.counts[i] += int64(n)
	t.mu.Unlock()
}

// rate returns items per second over the last throughputWindow seconds.
func (t *throughput) rate() float64 {
	sec := t.now().Unix()
	var n int64
	t.mu.Lock()
	for i := range t.secs {
		if sec-t.secs[i] < throughputWindow {
			n += t.counts[i]
		}
	}
	t.mu.Unlock()
	return float64(n) / throughputWindow
}

// retryAfterSeconds estimates when a client should retry: the time the
// models need, at rate items/s, to work through waiting items plus its
// own, with rate taken as at least one item per throughputWindow (so a
// stalled server still answers a finite wait), clamped to [1, 120].
func retryAfterSeconds(waiting int64, rate float64) int {
	rate = max(rate, 1.0/throughputWindow)
	s := math.Ceil(float64(waiting+1) / rate)
	return int(min(max(s, minRetryAfter), maxRetryAfter))
}

// retryAfter estimates the Retry-After of err's answer (429 or 503): for
// a rate limit, the time the key's bucket takes to refill one request;
// otherwise the time to work through the batchers' queues (and, for a
// shutdown or a store outage, the job queue when it can be read) at the
// recent throughput.
func (s *Server) retryAfter(ctx context.Context, err error) int {
	if errors.Is(err, ErrRateLimited) && s.cfg.RateLimit > 0 {
		return int(min(max(math.Ceil(1/s.cfg.RateLimit), minRetryAfter), maxRetryAfter))
	}
	waiting := int64(s.depth())
	if !errors.Is(err, batch.ErrQueueFull) {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		if n, err := s.cfg.Jobs.Pending(pctx); err == nil {
			waiting += n
		}
		cancel()
	}
	return retryAfterSeconds(waiting, s.done.rate())
}

// depth returns the requests waiting in every batcher.
func (s *Server) depth() int {
	n := 0
	if s.vqa != nil {
		n += s.vqa.Depth()
	}
	if s.gen != nil {
		n += s.gen.Depth()
	}
	if s.score != nil {
		n += s.score.Depth()
	}
	if s.chat != nil {
		n += s.chat.Depth()
	}
	return n
}
