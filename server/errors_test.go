package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/internal/redistest"
	"github.com/medgr2/medgr2/server/model"
	"github.com/medgr2/medgr2/server/queue"
)

// rawDo sends method to url with key and returns status, headers and body.
func rawDo(t *testing.T, method, url, key, ct string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestRedisDownIs503 stops Redis under a server: job endpoints answer 503
// with a Retry-After and no internal address, /readyz goes 503, and both
// recover when Redis is back.
func TestRedisDownIs503(t *testing.T) {
	rs := redistest.Start(t)
	var logs bytes.Buffer
	_, ts := start(t, server.Config{Jobs: queue.NewRedis(rs.Client(), queue.RedisConfig{Block: 20 * time.Millisecond}),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, fakes())
	st := submitJSONL(t, ts.URL, api.JobKindScore, scoreJSONL(t, 1))
	rs.Stop()
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/jobs/" + st.ID, ""},
		{"POST", "/v1/jobs?kind=score", scoreJSONL(t, 1)},
		{"GET", "/readyz", ""},
	} {
		resp, body := rawDo(t, tc.method, ts.URL+tc.path, "", "application/x-ndjson", strings.NewReader(tc.body))
		if resp.StatusCode != 503 {
			t.Fatalf("%s %s with Redis down: %d %s", tc.method, tc.path, resp.StatusCode, body)
		}
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("%s %s: Retry-After %q", tc.method, tc.path, resp.Header.Get("Retry-After"))
		}
		if bytes.Contains(body, []byte(rs.Addr)) || bytes.Contains(body, []byte("dial")) || bytes.Contains(body, []byte("127.0.0.1")) {
			t.Errorf("%s %s: body shows an internal address: %s", tc.method, tc.path, body)
		}
		if rid := resp.Header.Get("X-Request-Id"); tc.path != "/readyz" && !bytes.Contains(body, []byte(`"request_id":"`+rid+`"`)) {
			t.Errorf("%s %s: body lacks request id %s: %s", tc.method, tc.path, rid, body)
		}
	}
	if !strings.Contains(logs.String(), rs.Addr) {
		t.Errorf("the log lacks the cause:\n%s", logs.String())
	}
	rs.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for do(t, "GET", ts.URL+"/readyz", "", nil, nil).StatusCode != 200 {
		if time.Now().After(deadline) {
			t.Fatal("readyz did not recover with Redis")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := do(t, "GET", ts.URL+"/v1/jobs/"+st.ID, "", nil, nil); r.StatusCode != 200 {
		t.Fatalf("status after Redis restart: %d", r.StatusCode)
	}
}

// leakyVQA fails every batch with an error naming a file and a graph node.
type leakyVQA struct{ model.VQA }

const leak = "/opt/models/vqa/model.onnx: node /model/layers.0/self_attn/MatMul_3"

func (leakyVQA) AnswerBatch(context.Context, []model.VQAInput) ([]model.VQAOutput, error) {
	return nil, errors.New("onnxruntime: " + leak + ": out of memory")
}

// TestInternalErrorsHideDetails checks that a 500 and a failed job item
// show neither path nor node name, only ids that lead to the log.
func TestInternalErrorsHideDetails(t *testing.T) {
	var logs bytes.Buffer
	models := fakes()
	models.VQA = leakyVQA{models.VQA}
	s, err := server.New(server.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, models)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	url := httptestServer(t, s)
	q := api.VQARequest{Image: dataURI("image/png", readFile(t, xrayPNG)), Question: "q", Options: []string{"a", "b"}}
	var e api.ErrorResponse
	resp := do(t, "POST", url+"/v1/vqa", "", q, &e)
	if resp.StatusCode != 500 || e.Error.Code != api.CodeInternal || strings.Contains(e.Error.Message, "model") && strings.Contains(e.Error.Message, "/opt") {
		t.Fatalf("vqa: %d %+v", resp.StatusCode, e)
	}
	if strings.Contains(e.Error.Message, leak) || strings.Contains(e.Error.Message, "MatMul") || e.Error.RequestID == "" {
		t.Fatalf("500 body: %+v", e.Error)
	}
	if !strings.Contains(logs.String(), e.Error.RequestID) || !strings.Contains(logs.String(), "MatMul_3") {
		t.Fatalf("log lacks request %s and its cause:\n%s", e.Error.RequestID, logs.String())
	}
	// A job item that keeps failing: its result names the log entry.
	line := `{"image":"` + q.Image + `","question":"q","options":["a","b"]}`
	st := waitJob(t, url, submitJSONL(t, url, api.JobKindVQA, line).ID)
	res := readResults(t, url, st.ID)
	if len(res) != 1 || res[0].Error == "" || strings.Contains(res[0].Error, "MatMul") || !strings.Contains(res[0].Error, "error_id") {
		t.Fatalf("job result: %+v", res)
	}
}

// TestOversizedJobBodyIs413 sends a JSONL body over the limit, with and
// without Content-Length, and a server-side file with a line over it.
func TestOversizedJobBodyIs413(t *testing.T) {
	dir := t.TempDir()
	big := `{"image":"` + strings.Repeat("A", 2<<20) + `"}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "big.jsonl"), []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	_, ts := start(t, server.Config{MaxBody: 1 << 20, JobsDir: dir}, fakes())
	bodies := map[string]io.Reader{
		"with length": strings.NewReader(big),
		"chunked":     io.MultiReader(strings.NewReader(big)), // no length: read until the limit
	}
	for name, body := range bodies {
		resp, b := rawDo(t, "POST", ts.URL+"/v1/jobs?kind=score", "", "application/x-ndjson", body)
		if resp.StatusCode != 413 || !bytes.Contains(b, []byte(api.CodeBodyTooLarge)) {
			t.Errorf("%s: %d %s", name, resp.StatusCode, b)
		}
	}
	var e api.ErrorResponse
	if r := do(t, "POST", ts.URL+"/v1/jobs", "", api.JobRequest{Kind: "score", Path: "big.jsonl"}, &e); r.StatusCode != 413 || strings.Contains(e.Error.Message, "bufio") {
		t.Errorf("server-side file: %d %+v", r.StatusCode, e)
	}
}

// TestUnknownRouteAndModels checks the plain 404 of an unknown route and
// GET /v1/models in OpenAI's list format, behind the key.
func TestUnknownRouteAndModels(t *testing.T) {
	_, ts := start(t, server.Config{APIKeys: []string{"k"}}, fakes())
	var e api.ErrorResponse
	if r := do(t, "GET", ts.URL+"/v2/nothing", "k", nil, &e); r.StatusCode != 404 || e.Error.Code != api.CodeNotFound || strings.Contains(e.Error.Message, "queue") {
		t.Fatalf("unknown route: %d %+v", r.StatusCode, e)
	}
	if r := do(t, "GET", ts.URL+"/v1/models", "", nil, nil); r.StatusCode != 401 {
		t.Fatalf("models without a key: %d", r.StatusCode)
	}
	var list api.ModelList
	if r := do(t, "GET", ts.URL+"/v1/models", "k", nil, &list); r.StatusCode != 200 || list.Object != "list" || len(list.Data) != 4 {
		t.Fatalf("models: %d %+v", r.StatusCode, list)
	}
	for _, m := range list.Data {
		if m.Object != "model" || m.ID == "" || m.OwnedBy == "" || m.Created == 0 {
			t.Errorf("model card %+v", m)
		}
	}
}
