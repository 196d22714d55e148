package queue

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/medgr2/medgr2/server/api"
)

// boltWorkerEnv, when set to a state folder, turns the test binary into a
// process that runs the folder's jobs (see TestMain) and prints one line
// per finished item.
const boltWorkerEnv = "MEDGR2_QUEUE_TEST_BOLT_WORKER"

// boltWorkerMain runs a worker on dir until no task is left; each item
// costs 2ms.
func boltWorkerMain(dir string) int {
	st, err := OpenBolt(dir, BoltConfig{Block: 50 * time.Millisecond, MaxAttempts: 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	ctx, cancel := context.WithCancel(context.Background())
	w := &Worker{Store: st, Consumer: "pid", Concurrency: 8,
		Process: func(ctx context.Context, _ string, p []byte) (json.RawMessage, error) {
			time.Sleep(2 * time.Millisecond)
			return json.RawMessage(fmt.Sprintf(`{"pid":%d,"item":%s}`, os.Getpid(), p)), nil
		},
		OnDone: func(Task, Outcome) {
			mu.Lock()
			fmt.Fprintln(out, "done")
			out.Flush()
			mu.Unlock()
		}}
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	for {
		time.Sleep(20 * time.Millisecond)
		if n, err := st.Pending(ctx); err == nil && n == 0 {
			break
		}
	}
	cancel()
	<-done
	if err := st.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// checkOnce checks that job id has exactly one successful result per item
// and returns the results per worker pid.
func checkOnce(t *testing.T, st Store, id string, total int) map[int]int {
	t.Helper()
	s, err := st.Status(context.Background(), id)
	if err != nil || s.State != api.JobDone || s.Done != total || s.Failed != 0 {
		t.Fatalf("status %+v, err %v", s, err)
	}
	seen := make([]int, total)
	pids := map[int]int{}
	err = st.Results(context.Background(), id, func(line []byte) error {
		var r struct {
			Index  int
			Result struct {
				Pid  int
				Item struct{ N int }
			}
		}
		if err := json.Unmarshal(line, &r); err != nil {
			return err
		}
		if r.Result.Item.N != r.Index {
			return fmt.Errorf("line %s: result for the wrong item", line)
		}
		seen[r.Index]++
		pids[r.Result.Pid]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("item %d has %d results", i, n)
		}
	}
	return pids
}

// TestBoltSurvivesKill9 runs a 2,000-item job in a child process, kills it
// with SIGKILL mid-job, finishes the job in a second child, and checks
// that every item has exactly one result.
func TestBoltSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	const total = 2000
	st, err := OpenBolt(dir, BoltConfig{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.Submit(context.Background(), api.JobKindScore, "k", items(total))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	run := func(killAfter int) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), boltWorkerEnv+"="+dir)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		n := 0
		for sc.Scan() {
			if n++; killAfter > 0 && n == killAfter {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		err = cmd.Wait()
		if killAfter == 0 && err != nil {
			t.Fatalf("second worker: %v", err)
		}
		t.Logf("worker %d finished %d items before exit (%v)", cmd.Process.Pid, n, err)
	}
	run(total / 4)
	run(0)
	st = openBolt(t, dir, BoltConfig{})
	if pids := checkOnce(t, st, id, total); len(pids) != 2 {
		t.Fatalf("results came from %d processes, want 2: %v", len(pids), pids)
	}
}

// TestBoltReopenMidJob closes the database under a running worker and
// reopens it: the job finishes with exactly one result per item.
func TestBoltReopenMidJob(t *testing.T) {
	dir := t.TempDir()
	const total = 300
	st, err := OpenBolt(dir, BoltConfig{Block: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.Submit(context.Background(), api.JobKindScore, "k", items(total))
	if err != nil {
		t.Fatal(err)
	}
	var processed atomic.Int32
	proc := func(pid int) ProcessFunc {
		return func(ctx context.Context, _ string, p []byte) (json.RawMessage, error) {
			processed.Add(1)
			time.Sleep(time.Millisecond)
			return json.RawMessage(fmt.Sprintf(`{"pid":%d,"item":%s}`, pid, p)), nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil)) // outcomes after Close are expected to fail
	w := &Worker{Store: st, Concurrency: 8, Process: proc(1), Drain: time.Second, Logger: quiet}
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	for processed.Load() < total/3 {
		time.Sleep(time.Millisecond)
	}
	// Close under the worker: outcomes of items in flight are lost with
	// the database handle, as in a crash.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	st = openBolt(t, dir, BoltConfig{Block: 20 * time.Millisecond})
	s, err := st.Status(context.Background(), id)
	if err != nil || s.Done == 0 || s.Done == total {
		t.Fatalf("after reopen: %+v %v (want a job part done)", s, err)
	}
	runJobID(t, st, id, proc(2))
	pids := checkOnce(t, st, id, total)
	t.Logf("results per run: %v; items processed %d", pids, processed.Load())
}

// runJobID runs a worker on st until job id is done.
func runJobID(t *testing.T, st Store, id string, fn ProcessFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &Worker{Store: st, Concurrency: 4, Process: fn, Drain: time.Second}
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := st.Status(ctx, id)
		if err == nil && s.State == api.JobDone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job not done: %+v %v", s, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

// TestBoltLostAndExpired checks the answers for ids the store no longer
// holds: expired (tombstone), lost (database replaced) and never issued.
func TestBoltLostAndExpired(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	dir := t.TempDir()
	st := openBolt(t, dir, BoltConfig{ResultTTL: time.Hour, Now: clock, Block: time.Millisecond})
	ctx := context.Background()
	id, err := st.Submit(ctx, api.JobKindScore, "k", items(1))
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := st.Claim(ctx, "c", 1)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("claim: %v %v", tasks, err)
	}
	if err := st.Complete(ctx, tasks[0], Outcome{Result: json.RawMessage(`1`)}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(59 * time.Minute)
	if s, err := st.Status(ctx, id); err != nil || s.State != api.JobDone {
		t.Fatalf("before the TTL: %+v %v", s, err)
	}
	now = now.Add(2 * time.Minute)
	var lost *LostError
	if _, err := st.Status(ctx, id); !errors.As(err, &lost) || !errors.Is(err, ErrLost) {
		t.Fatalf("expired job, not swept: %v", err)
	}
	if n, err := st.Sweep(); err != nil || n != 1 {
		t.Fatalf("sweep removed %d, err %v", n, err)
	}
	for name, err := range map[string]error{
		"status":  func() error { _, err := st.Status(ctx, id); return err }(),
		"results": st.Results(ctx, id, func([]byte) error { return nil }),
		"cancel":  st.Cancel(ctx, id),
	} {
		if !errors.As(err, &lost) || lost.Why == "" || !lost.Created.Equal(now.Add(-61*time.Minute)) {
			t.Errorf("%s of a swept job: %v", name, err)
		}
	}
	forged := id[:31] + map[bool]string{true: "1", false: "0"}[id[31] == '0']
	if _, err := st.Status(ctx, forged); !errors.Is(err, ErrNotFound) {
		t.Errorf("forged id: %v, want ErrNotFound", err)
	}
	// A replaced database with the same id key (as a restored backup
	// would have) reports the job lost, not unknown.
	id2, err := st.Submit(ctx, api.JobKindScore, "k", items(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bJobs).Delete([]byte(id2)) }); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Status(ctx, id2); !errors.As(err, &lost) || lost.Why == "" {
		t.Fatalf("job missing from the database: %v", err)
	}
}

// TestBoltDeadLettersItemsThatKillTheProcess claims an item and reopens
// the database without an outcome, as a crash while running it would:
// after MaxAttempts claims it is dead-lettered with an error result.
func TestBoltDeadLettersItemsThatKillTheProcess(t *testing.T) {
	dir := t.TempDir()
	cfg := BoltConfig{MaxAttempts: 2, Block: time.Millisecond}
	ctx := context.Background()
	st, err := OpenBolt(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.Submit(ctx, api.JobKindScore, "k", items(1))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		tasks, err := st.Claim(ctx, "c", 1)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 1, false: 0}[i < 2]; len(tasks) != want {
			t.Fatalf("claim %d after %d crashes got %d tasks, want %d", i, i, len(tasks), want)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if st, err = OpenBolt(dir, cfg); err != nil {
			t.Fatal(err)
		}
	}
	defer st.Close()
	s, err := st.Status(ctx, id)
	n, _ := st.DeadLetters(ctx)
	if err != nil || s.State != api.JobDone || s.Failed != 1 || n != 1 {
		t.Fatalf("status %+v err %v dead %d", s, err, n)
	}
}

// TestBoltLockedByAnotherStore checks that a second store on the same
// folder is refused with a message, not a hang.
func TestBoltLockedByAnotherStore(t *testing.T) {
	dir := t.TempDir()
	openBolt(t, dir, BoltConfig{})
	_, err := OpenBolt(dir, BoltConfig{})
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second open: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, BoltFile)); err != nil {
		t.Fatal(err)
	}
}
