package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/internal/redistest"
)

// workerEnv, when set to a Redis address, turns the test binary into a
// queue worker process (see TestMain).
const workerEnv = "MEDGR2_QUEUE_TEST_WORKER"

func TestMain(m *testing.M) {
	if addr := os.Getenv(workerEnv); addr != "" {
		os.Exit(workerMain(addr))
	}
	if dir := os.Getenv(boltWorkerEnv); dir != "" {
		os.Exit(boltWorkerMain(dir))
	}
	os.Exit(m.Run())
}

// crashConfig is shared by the test and its worker processes.
var crashConfig = RedisConfig{Prefix: "crash:", ClaimIdle: 500 * time.Millisecond, Block: 100 * time.Millisecond, MaxAttempts: 10}

// workerMain runs a worker until killed; each item costs 2ms.
func workerMain(addr string) int {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	st := NewRedis(c, crashConfig)
	w := &Worker{Store: st, Consumer: "pid-" + strconv.Itoa(os.Getpid()), Concurrency: 8,
		Process: func(ctx context.Context, _ string, p []byte) (json.RawMessage, error) {
			time.Sleep(2 * time.Millisecond)
			return json.RawMessage(fmt.Sprintf(`{"pid":%d,"item":%s}`, os.Getpid(), p)), nil
		}}
	w.Run(context.Background())
	return 0
}

func startWorker(t *testing.T, addr string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerEnv+"="+addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd
}

// TestJobSurvivesWorkerKillAndRedisRestart runs a 2,000-item job on two
// worker processes, kills one with SIGKILL mid-job, restarts Redis (append
// only file on), and checks that every item ends with exactly one result.
func TestJobSurvivesWorkerKillAndRedisRestart(t *testing.T) {
	rs := redistest.Start(t)
	st := NewRedis(rs.Client(), crashConfig)
	ctx := context.Background()
	const total = 2000
	id, err := st.Submit(ctx, api.JobKindScore, "", items(total))
	if err != nil {
		t.Fatal(err)
	}
	victim := startWorker(t, rs.Addr)
	startWorker(t, rs.Addr)
	waitDone(t, st, id, total/5)
	if err := victim.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_, _ = victim.Process.Wait()
	waitDone(t, st, id, total/2)
	rs.Restart()
	s := waitDone(t, st, id, total)
	if s.State != api.JobDone || s.Failed != 0 {
		t.Fatalf("final status %+v", s)
	}
	seen := make([]int, total)
	pids := map[int]int{}
	err = st.Results(ctx, id, func(line []byte) error {
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
	if len(pids) != 2 {
		t.Fatalf("results came from %d processes, want 2: %v", len(pids), pids)
	}
	t.Logf("results per worker pid: %v", pids)
}

// waitDone polls until at least n items are done, tolerating Redis being
// briefly unavailable.
func waitDone(t *testing.T, st Store, id string, n int) Job {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		s, err := st.Status(context.Background(), id)
		if err == nil && s.Done >= n {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %d done: status %+v err %v", n, s, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
