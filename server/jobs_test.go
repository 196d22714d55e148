package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/cache"
	"github.com/medgr2/medgr2/server/internal/redistest"
	"github.com/medgr2/medgr2/server/queue"
)

// scoreJSONL returns n scoring lines, the third of which has a broken image.
func scoreJSONL(t *testing.T, n int) string {
	png := dataURI("image/png", readFile(t, xrayPNG))
	var b strings.Builder
	for i := range n {
		img := png
		if i == 2 {
			img = dataURI("image/png", []byte("not an image"))
		}
		line, _ := json.Marshal(api.ScoreItem{Image: img, Question: fmt.Sprintf("q%d", i), Options: []string{"a", "b"}, Answer: "B"})
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func submitJSONL(t *testing.T, url, kind, body string) api.JobStatus {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/jobs?kind="+kind, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st api.JobStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != 202 {
		t.Fatalf("submit: status %d err %v", resp.StatusCode, err)
	}
	return st
}

func waitJob(t *testing.T, url, id string) api.JobStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st api.JobStatus
		do(t, "GET", url+"/v1/jobs/"+id, "", nil, &st)
		if st.State == api.JobDone {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("job not done: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readResults(t *testing.T, url, id string) []api.JobResult {
	resp, err := http.Get(url + "/v1/jobs/" + id + "/results")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []api.JobResult
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var r api.JobResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestJobsEndToEnd(t *testing.T) {
	rs := redistest.Start(t)
	backends := map[string]func() server.Config{
		"in-process": func() server.Config { return server.Config{} },
		"redis": func() server.Config {
			c := rs.Client()
			return server.Config{Cache: cache.NewRedis(c, ""), Jobs: queue.NewRedis(c, queue.RedisConfig{Block: 50 * time.Millisecond})}
		},
	}
	for name, cfg := range backends {
		t.Run(name, func(t *testing.T) {
			_, ts := start(t, cfg(), fakes())
			st := submitJSONL(t, ts.URL, api.JobKindScore, scoreJSONL(t, 20))
			if st.Total != 20 {
				t.Fatalf("total %d", st.Total)
			}
			st = waitJob(t, ts.URL, st.ID)
			if st.Done != 20 || st.Failed != 1 || len(st.Errors) != 1 || st.Errors[0].Index != 2 {
				t.Fatalf("status %+v", st)
			}
			res := readResults(t, ts.URL, st.ID)
			if len(res) != 20 {
				t.Fatalf("%d results", len(res))
			}
			for i, r := range res {
				if r.Index != i || (i == 2) != (r.Error != "") {
					t.Fatalf("result %d: %+v", i, r)
				}
			}
		})
	}
}

func TestJobFromServerPathAndCancel(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "items.jsonl"), []byte(scoreJSONL(t, 5)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, ts := start(t, server.Config{JobsDir: dir}, fakes())
	var st api.JobStatus
	if r := do(t, "POST", ts.URL+"/v1/jobs", "", api.JobRequest{Kind: "score", Path: "items.jsonl"}, &st); r.StatusCode != 202 {
		t.Fatalf("status %d", r.StatusCode)
	}
	if st = waitJob(t, ts.URL, st.ID); st.Done != 5 {
		t.Fatalf("status %+v", st)
	}
	var e api.ErrorResponse
	if r := do(t, "POST", ts.URL+"/v1/jobs", "", api.JobRequest{Kind: "score", Path: "../etc/passwd"}, &e); r.StatusCode != 400 || e.Error.Field != "path" {
		t.Fatalf("escape: status %d %+v", r.StatusCode, e)
	}
	if r := do(t, "DELETE", ts.URL+"/v1/jobs/"+st.ID, "", nil, &st); r.StatusCode != 200 || st.State != api.JobCanceled {
		t.Fatalf("cancel: status %d %+v", r.StatusCode, st)
	}
	if r := do(t, "DELETE", ts.URL+"/v1/jobs/nope", "", nil, &e); r.StatusCode != 404 {
		t.Fatalf("cancel unknown: %d", r.StatusCode)
	}
}

// TestRedisResultsSurviveServerRestart checks that a second server on the
// same Redis serves a finished job's results and shares the cache.
func TestRedisResultsSurviveServerRestart(t *testing.T) {
	rs := redistest.Start(t)
	cfg := func() server.Config {
		c := rs.Client()
		return server.Config{Cache: cache.NewRedis(c, ""), Jobs: queue.NewRedis(c, queue.RedisConfig{Block: 50 * time.Millisecond})}
	}
	s1, ts1 := start(t, cfg(), fakes())
	st := submitJSONL(t, ts1.URL, api.JobKindScore, scoreJSONL(t, 4))
	waitJob(t, ts1.URL, st.ID)
	q := api.VQARequest{Image: dataURI("image/png", readFile(t, xrayPNG)), Question: "q", Options: []string{"a", "b"}}
	do(t, "POST", ts1.URL+"/v1/vqa", "", q, nil)
	ts1.Close()
	_ = s1.Close(context.Background())
	_, ts2 := start(t, cfg(), fakes())
	if res := readResults(t, ts2.URL, st.ID); len(res) != 4 {
		t.Fatalf("restarted server served %d results", len(res))
	}
	var v api.VQAResponse
	do(t, "POST", ts2.URL+"/v1/vqa", "", q, &v)
	if !v.Cached {
		t.Fatal("second replica missed the shared cache")
	}
}

// TestJobVQACacheHitSkipsDecode checks that a VQA job item answered from
// the cache does not decode its image, as on /v1/vqa: one live request
// decodes and fills the cache, and the job's identical items only hash.
func TestJobVQACacheHitSkipsDecode(t *testing.T) {
	dec, calls := countingDecoder()
	_, ts := start(t, server.Config{DecodeImage: dec}, fakes())
	req := api.VQARequest{Image: dataURI("image/png", readFile(t, xrayPNG)), Question: "Which modality?", Options: []string{"CT", "X-ray"}}
	var live api.VQAResponse
	if resp := do(t, "POST", ts.URL+"/v1/vqa", "", req, &live); resp.StatusCode != http.StatusOK || live.Cached {
		t.Fatalf("live request: status %d, cached %v", resp.StatusCode, live.Cached)
	}
	line, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	const items = 3
	body := strings.Repeat(string(line)+"\n", items)
	st := waitJob(t, ts.URL, submitJSONL(t, ts.URL, api.JobKindVQA, body).ID)
	if st.Done != items || st.Failed != 0 {
		t.Fatalf("job status %+v", st)
	}
	for _, r := range readResults(t, ts.URL, st.ID) {
		res, ok := r.Result.(map[string]any)
		if !ok || res["cached"] != true || res["answer"] != live.Answer {
			t.Fatalf("item %d: %+v, want a cached answer %q", r.Index, r, live.Answer)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("decoder called %d times for 1 live request and %d cached job items, want 1", n, items)
	}
}
