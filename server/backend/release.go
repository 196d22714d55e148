package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medgr2/medgr2/models"
)

// DefaultIdleRelease is Options.IdleRelease's default: after 20 s without
// a model call, with resident memory over its level after the last load by
// more than ReleaseGrowth, the sessions are reopened.
const DefaultIdleRelease = 20 * time.Second

// ReleaseGrowth is the growth of resident memory over its level after the
// last (re)load, as a fraction, above which an idle process reopens its
// sessions (0.2: 20%).
const ReleaseGrowth = 0.2

// slot holds one opened bundle. Every call on the bundle holds mu for
// reading; the releaser swaps v for a freshly opened copy of the same
// bundle under the write lock, and only when no call holds it.
type slot struct {
	dir string           // bundle folder, for reopening and logs
	man *models.Manifest // the bundle's manifest (the same after a reopen)
	mu  sync.RWMutex     // read-held by each call on v, write-held to swap it
	v   *models.VLM      // the open bundle

	used     atomic.Bool  // a call ran on v since it was opened
	inflight atomic.Int64 // calls holding mu now
	last     atomic.Int64 // when the last call ended, Unix nanoseconds
}

// newSlot wraps an opened bundle.
func newSlot(dir string, v *models.VLM) *slot {
	s := &slot{dir: dir, man: v.Manifest(), v: v}
	s.last.Store(time.Now().UnixNano())
	return s
}

// use returns the open bundle and the function that ends the call; the
// bundle stays open until then.
func (s *slot) use() (*models.VLM, func()) {
	s.mu.RLock()
	s.inflight.Add(1)
	s.used.Store(true)
	return s.v, func() {
		s.last.Store(time.Now().UnixNano())
		s.inflight.Add(-1)
		s.mu.RUnlock()
	}
}

// idleSince reports whether no call is in flight and the last one ended
// at least d before now.
func (s *slot) idleSince(now time.Time, d time.Duration) bool {
	return s.inflight.Load() == 0 && now.Sub(time.Unix(0, s.last.Load())) >= d
}

// swap replaces the bundle with nv unless a call holds it, and returns
// the bundle replaced (nil when a call held it: the caller closes nv).
func (s *slot) swap(nv *models.VLM) *models.VLM {
	if !s.mu.TryLock() {
		return nil
	}
	defer s.mu.Unlock()
	old := s.v
	s.v = nv
	s.used.Store(false)
	return old
}

// close closes the bundle; calls must have ended.
func (s *slot) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.v == nil {
		return nil
	}
	err := s.v.Close()
	s.v = nil
	return err
}

// releaser gives memory back after a spike. ONNX Runtime's CPU arena keeps
// the largest memory a batch ever took for the life of its session, and
// the onnxruntime_go API in use cannot ask it to shrink; closing the
// session frees it. So once every slot has idled for idle and resident
// memory is more than ReleaseGrowth over its level after the last load,
// the releaser opens a fresh copy of each used bundle, swaps it in while
// no call holds the slot, closes the old one, and returns free Go and C
// heap memory to the OS. Requests never wait for a reopen: they keep the
// old sessions until the swap, which takes no time.
type releaser struct {
	slots []*slot
	idle  time.Duration
	open  func(ctx context.Context, dir string) (*models.VLM, error)
	rss   func() (int64, error) // resident bytes of this process
	trim  func()                // returns the C heap's free memory to the OS
	log   *slog.Logger

	base int64         // resident bytes after the last (re)load; 0: unknown
	stop chan struct{} // closed by Close to end run
	done chan struct{} // closed when run returns
}

// start measures the baseline and runs the releaser until stopRelease.
func (r *releaser) start() {
	r.base, _ = r.rss()
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	go r.run()
}

// run checks every quarter of the idle time.
func (r *releaser) run() {
	defer close(r.done)
	t := time.NewTicker(max(r.idle/4, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-r.stop:
				case <-ctx.Done():
				}
				cancel()
			}()
			if _, err := r.tick(ctx, now); err != nil {
				r.log.Warn("backend: idle release", "err", err)
			}
			cancel()
		}
	}
}

// stopRelease ends run and waits for it; nil-safe.
func (r *releaser) stopRelease() {
	if r == nil || r.stop == nil {
		return
	}
	close(r.stop)
	<-r.done
}

// tick releases when every slot has idled and memory has grown; it
// reports how many bundles it reopened.
func (r *releaser) tick(ctx context.Context, now time.Time) (int, error) {
	used := false
	for _, s := range r.slots {
		if !s.idleSince(now, r.idle) {
			return 0, nil
		}
		used = used || s.used.Load()
	}
	if !used {
		return 0, nil
	}
	rss, rssErr := r.rss()
	if rssErr == nil && r.base > 0 && float64(rss) <= float64(r.base)*(1+ReleaseGrowth) {
		for _, s := range r.slots {
			s.used.Store(false) // nothing to give back until the next call
		}
		return 0, nil
	}
	n, err := r.reopen(ctx)
	debug.FreeOSMemory()
	r.trim()
	if after, err := r.rss(); err == nil {
		r.log.Info("backend: idle release", "reopened", n, "rss_before_mb", rss>>20, "rss_after_mb", after>>20)
		r.base = after
	}
	return n, err
}

// reopen swaps each used slot's bundle for a fresh copy.
func (r *releaser) reopen(ctx context.Context) (n int, err error) {
	for _, s := range r.slots {
		if !s.used.Load() {
			continue
		}
		nv, oerr := r.open(ctx, s.dir)
		if oerr != nil {
			err = errors.Join(err, fmt.Errorf("reopen %s: %w", s.dir, oerr))
			continue
		}
		old := s.swap(nv)
		if old == nil {
			err = errors.Join(err, nv.Close()) // a call came in: next time
			continue
		}
		err = errors.Join(err, old.Close())
		n++
	}
	return n, err
}
