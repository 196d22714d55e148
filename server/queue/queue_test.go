package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/internal/redistest"
)

// stores returns one of each Store implementation, Redis on a private server.
func stores(t *testing.T) map[string]Store {
	rs := redistest.Start(t)
	return map[string]Store{
		"bolt":  openBolt(t, t.TempDir(), BoltConfig{MaxAttempts: 2, Block: 100 * time.Millisecond}),
		"redis": NewRedis(rs.Client(), RedisConfig{MaxAttempts: 2, Block: 100 * time.Millisecond, ClaimIdle: time.Second}),
	}
}

func items(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(fmt.Sprintf(`{"n":%d}`, i))
	}
	return out
}

// runWorker processes tasks with fn until the job is finished.
func runJob(t *testing.T, st Store, n int, fn ProcessFunc) Job {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	id, err := st.Submit(ctx, api.JobKindScore, "owner", items(n))
	if err != nil {
		t.Fatal(err)
	}
	w := &Worker{Store: st, Consumer: "t", Concurrency: 4, Process: fn, Drain: time.Second}
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := st.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.State == api.JobDone {
			cancel()
			<-done
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("job not done: %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStoresProcessEveryItemOnce(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			s := runJob(t, st, 50, func(_ context.Context, _ string, p []byte) (json.RawMessage, error) {
				return p, nil
			})
			if s.Done != 50 || s.Failed != 0 {
				t.Fatalf("status %+v", s)
			}
			seen := map[int]bool{}
			err := st.Results(context.Background(), s.ID, func(line []byte) error {
				var r struct {
					Index  int             `json:"index"`
					Result struct{ N int } `json:"result"`
				}
				if err := json.Unmarshal(line, &r); err != nil {
					return err
				}
				if r.Result.N != r.Index || seen[r.Index] {
					return fmt.Errorf("bad or duplicate line %s", line)
				}
				seen[r.Index] = true
				return nil
			})
			if err != nil || len(seen) != 50 {
				t.Fatalf("results: %d lines, err %v", len(seen), err)
			}
		})
	}
}

func TestStoresFailures(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			var calls atomic.Int32
			s := runJob(t, st, 4, func(_ context.Context, _ string, p []byte) (json.RawMessage, error) {
				calls.Add(1)
				switch string(p) {
				case `{"n":0}`:
					return nil, Permanent(errors.New("bad image"))
				case `{"n":1}`:
					return nil, errors.New("model crashed")
				}
				return p, nil
			})
			if s.Done != 4 || s.Failed != 2 || len(s.Errors) != 2 {
				t.Fatalf("status %+v", s)
			}
			// item 0 once, item 1 twice (MaxAttempts 2), items 2 and 3 once.
			if c := calls.Load(); c != 5 {
				t.Fatalf("process called %d times, want 5", c)
			}
		})
	}
}

func TestStoresBadInput(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if _, err := st.Submit(ctx, api.JobKindVQA, "", nil); !errors.Is(err, ErrEmptyJob) {
				t.Errorf("empty job: %v", err)
			}
			if _, err := st.Status(ctx, "nope"); !errors.Is(err, ErrNotFound) {
				t.Errorf("status: %v", err)
			}
			if err := st.Cancel(ctx, "nope"); !errors.Is(err, ErrNotFound) {
				t.Errorf("cancel: %v", err)
			}
			if err := st.Results(ctx, "nope", func([]byte) error { return nil }); !errors.Is(err, ErrNotFound) {
				t.Errorf("results: %v", err)
			}
		})
	}
}

func TestStoresCancel(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			id, err := st.Submit(ctx, api.JobKindScore, "owner", items(10))
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Cancel(ctx, id); err != nil {
				t.Fatal(err)
			}
			tasks, err := st.Claim(ctx, "c", 10)
			if err != nil || len(tasks) != 0 {
				t.Fatalf("claimed %d tasks of a cancelled job, err %v", len(tasks), err)
			}
			s, _ := st.Status(ctx, id)
			if s.State != api.JobCanceled {
				t.Fatalf("state %q", s.State)
			}
		})
	}
}

func TestRedisReclaimsAndDeadLetters(t *testing.T) {
	rs := redistest.Start(t)
	st := NewRedis(rs.Client(), RedisConfig{MaxAttempts: 2, ClaimIdle: 50 * time.Millisecond, Block: 20 * time.Millisecond})
	ctx := context.Background()
	id, err := st.Submit(ctx, api.JobKindScore, "owner", items(1))
	if err != nil {
		t.Fatal(err)
	}
	// Three consumers each claim and "die" without acknowledging.
	for i := range 3 {
		time.Sleep(60 * time.Millisecond)
		tasks, err := st.Claim(ctx, fmt.Sprint("dead-", i), 1)
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 && len(tasks) != 1 {
			t.Fatalf("claim %d got %d tasks", i, len(tasks))
		}
		if i == 2 && len(tasks) != 0 {
			t.Fatalf("entry delivered %d times was not dead-lettered", i+1)
		}
	}
	s, _ := st.Status(ctx, id)
	n, _ := st.DeadLetters(ctx)
	if s.Failed != 1 || s.State != api.JobDone || n != 1 {
		t.Fatalf("status %+v dead %d", s, n)
	}
}

func TestWorkerReleasesUnfinishedTasksOnStop(t *testing.T) {
	st := openBolt(t, t.TempDir(), BoltConfig{Block: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	id, err := st.Submit(ctx, api.JobKindScore, "owner", items(1))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	w := &Worker{Store: st, Consumer: "w", Drain: 20 * time.Millisecond,
		Process: func(ctx context.Context, _ string, p []byte) (json.RawMessage, error) {
			close(started)
			<-ctx.Done() // never finishes on its own
			return nil, ctx.Err()
		}}
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	<-started
	cancel()
	<-done
	tasks, err := st.Claim(context.Background(), "next", 5)
	if err != nil || len(tasks) != 1 || tasks[0].Attempts != 0 {
		t.Fatalf("released task not claimable: %v %+v", err, tasks)
	}
	if s, _ := st.Status(context.Background(), id); s.Done != 0 {
		t.Fatalf("released task got a result: %+v", s)
	}
}

// openBolt opens a Bolt store in dir, closed at test end.
func openBolt(t testing.TB, dir string, cfg BoltConfig) *Bolt {
	t.Helper()
	b, err := OpenBolt(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}
