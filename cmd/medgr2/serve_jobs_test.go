package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medgr2/medgr2/server/api"
)

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServe runs `serve` with args on addr until the returned stop is
// called (as SIGTERM would), and waits until it answers.
func startServe(t *testing.T, addr string, args ...string) (stop func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var logs bytes.Buffer
	errc := make(chan error, 1)
	go func() { errc <- runServe(ctx, append(args, "--addr", addr), io.Discard, &logs) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r, err := http.Get("http://" + addr + "/healthz"); err == nil {
			r.Body.Close()
			break
		}
		select {
		case err := <-errc:
			t.Fatalf("serve exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := false
	stop = func() string {
		if !stopped {
			stopped = true
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("serve: %v\n%s", err, logs.String())
			}
		}
		return logs.String()
	}
	t.Cleanup(func() { stop() })
	return stop
}

func jobStatus(t *testing.T, addr, id string) api.JobStatus {
	t.Helper()
	r, err := http.Get("http://" + addr + "/v1/jobs/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var st api.JobStatus
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil || r.StatusCode != 200 {
		t.Fatalf("status %d: %v", r.StatusCode, err)
	}
	return st
}

// TestServeResumesJobsAfterStop submits a job, stops the server (as on
// SIGTERM) part way, starts it again on the same --out folder, and checks
// that the job finishes with exactly one result per item.
func TestServeResumesJobsAfterStop(t *testing.T) {
	png, err := os.ReadFile("../../../shared/data/pneumoniamnist/test/pneumoniamnist_test_00001.png")
	if err != nil {
		t.Fatalf("shared test data: %v", err)
	}
	img := "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
	const total = 300
	var body strings.Builder
	for i := range total {
		line, _ := json.Marshal(api.ScoreItem{Image: img, Question: fmt.Sprintf("q%d", i), Options: []string{"a", "b"}, Answer: "A"})
		body.Write(line)
		body.WriteByte('\n')
	}
	out := t.TempDir()
	addr := freeAddr(t)
	args := []string{"--fake-models", "--fake-batch-cost", "2ms", "--fake-item-cost", "1ms", "--job-workers", "2",
		"--max-batch", "1", "--drain", "5s", "--out", out}
	stop := startServe(t, addr, args...)
	r, err := http.Post("http://"+addr+"/v1/jobs?kind=score", "application/x-ndjson", strings.NewReader(body.String()))
	if err != nil {
		t.Fatal(err)
	}
	var st api.JobStatus
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil || r.StatusCode != 202 {
		t.Fatalf("submit: %d %v", r.StatusCode, err)
	}
	r.Body.Close()
	for jobStatus(t, addr, st.ID).Done < total/10 {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	stop = startServe(t, addr, args...)
	first := jobStatus(t, addr, st.ID)
	if first.Done == 0 || first.Done == total {
		t.Fatalf("after the restart: %+v, want the job part done", first)
	}
	deadline := time.Now().Add(60 * time.Second)
	for s := first; s.State != api.JobDone; s = jobStatus(t, addr, st.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("job not done: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	res, err := http.Get("http://" + addr + "/v1/jobs/" + st.ID + "/results")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	seen := make([]int, total)
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		var jr api.JobResult
		if err := json.Unmarshal(sc.Bytes(), &jr); err != nil || jr.Error != "" || jr.Index < 0 || jr.Index >= total {
			t.Fatalf("result line %s: %v", sc.Bytes(), err)
		}
		seen[jr.Index]++
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("item %d has %d results", i, n)
		}
	}
	t.Logf("done before the stop: %d of %d", first.Done, total)
	stop()
}

// TestServeRefusesVolatileRedis checks that --redis on a server without
// appendonly is refused with what to set, unless --redis-allow-volatile.
func TestServeRefusesVolatileRedis(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not found on PATH (Debian: apt-get install -y redis-server): %v", err)
	}
	port := strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	dir := t.TempDir()
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", dir,
		"--appendonly", "no", "--save", "", "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	url := "redis://127.0.0.1:" + port + "/0"
	var err error
	for range 200 {
		err = runServe(context.Background(), []string{"--fake-models", "--redis", url, "--out", t.TempDir()}, io.Discard, io.Discard)
		if err != nil && !strings.Contains(err.Error(), "connection refused") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err == nil || !strings.Contains(err.Error(), "appendonly yes") || !strings.Contains(err.Error(), "--redis-allow-volatile") {
		t.Fatalf("volatile Redis: %v", err)
	}
	addr := freeAddr(t)
	stop := startServe(t, addr, "--fake-models", "--redis", url, "--redis-allow-volatile", "--out", t.TempDir())
	if logs := stop(); !strings.Contains(logs, "not durable") {
		t.Fatalf("no warning in logs:\n%s", logs)
	}
}

// TestServeResponseCacheFlag sends one VQA request twice: the second is
// answered from the cache by default, and by the model again with
// --response-cache=false.
func TestServeResponseCacheFlag(t *testing.T) {
	png, err := os.ReadFile("../../../shared/data/pneumoniamnist/test/pneumoniamnist_test_00001.png")
	if err != nil {
		t.Fatalf("shared test data: %v", err)
	}
	body, _ := json.Marshal(api.VQARequest{Image: base64.StdEncoding.EncodeToString(png), Question: "Which?", Options: []string{"a", "b"}})
	for _, c := range []struct {
		args       []string
		wantCached bool
	}{
		{nil, true},
		{[]string{"--response-cache=false"}, false},
	} {
		addr := freeAddr(t)
		stop := startServe(t, addr, append([]string{"--fake-models", "--out", t.TempDir()}, c.args...)...)
		var cached []bool
		for range 2 {
			r, err := http.Post("http://"+addr+"/v1/vqa", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			var resp api.VQAResponse
			err = json.NewDecoder(r.Body).Decode(&resp)
			r.Body.Close()
			if err != nil || r.StatusCode != http.StatusOK {
				t.Fatalf("%v: status %d, %v", c.args, r.StatusCode, err)
			}
			cached = append(cached, resp.Cached)
		}
		stop()
		if cached[0] || cached[1] != c.wantCached {
			t.Errorf("%v: cached %v, want [false %v]", c.args, cached, c.wantCached)
		}
	}
}
