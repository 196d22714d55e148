package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/api"
)

// TestJobsBelongToTheirKey checks that another key gets 404 on a job's
// status, results and DELETE, as for an id never issued, and that the
// owner's job is left untouched.
func TestJobsBelongToTheirKey(t *testing.T) {
	_, ts := start(t, server.Config{APIKeys: []string{"k1", "k2"}}, fakes())
	req, _ := http.NewRequest("POST", ts.URL+"/v1/jobs?kind=score", strings.NewReader(scoreJSONL(t, 3)))
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer k1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("submit: %v %v", resp.StatusCode, err)
	}
	id := strings.TrimPrefix(resp.Header.Get("Location"), "/v1/jobs/")
	resp.Body.Close()
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/jobs/" + id},
		{"GET", "/v1/jobs/" + id + "/results"},
		{"DELETE", "/v1/jobs/" + id},
	} {
		var e api.ErrorResponse
		if r := do(t, tc.method, ts.URL+tc.path, "k2", nil, &e); r.StatusCode != 404 || e.Error.Code != api.CodeNotFound {
			t.Errorf("%s %s with another key: %d %+v", tc.method, tc.path, r.StatusCode, e)
		}
	}
	var st api.JobStatus
	if r := do(t, "GET", ts.URL+"/v1/jobs/"+id, "k1", nil, &st); r.StatusCode != 200 || st.State == api.JobCanceled {
		t.Fatalf("owner: %d %+v", r.StatusCode, st)
	}
	if r := do(t, "DELETE", ts.URL+"/v1/jobs/"+id, "k1", nil, &st); r.StatusCode != 200 || st.State != api.JobCanceled {
		t.Fatalf("owner cancel: %d %+v", r.StatusCode, st)
	}
}

// TestReadyzHidesModelsWithoutKey checks that /readyz tells a caller
// without a key no more than up or down.
func TestReadyzHidesModelsWithoutKey(t *testing.T) {
	_, ts := start(t, server.Config{APIKeys: []string{"k1"}}, fakes())
	for _, tc := range []struct {
		key    string
		models bool
	}{{"", false}, {"wrong", false}, {"k1", true}} {
		var body map[string]any
		if r := do(t, "GET", ts.URL+"/readyz", tc.key, nil, &body); r.StatusCode != 200 {
			t.Fatalf("key %q: %d", tc.key, r.StatusCode)
		}
		if _, has := body["models"]; has != tc.models || body["status"] != "ready" {
			t.Errorf("key %q: %v", tc.key, body)
		}
	}
}

// TestLogsKeyedImageHash checks that the request log shows a keyed hash
// of the image, never its SHA-256, and that the hash depends on the key.
func TestLogsKeyedImageHash(t *testing.T) {
	png := readFile(t, xrayPNG)
	sum := sha256.Sum256(png)
	raw := hex.EncodeToString(sum[:])
	req := api.VQARequest{Image: dataURI("image/png", png), Question: "q", Options: []string{"a", "b"}}
	tags := map[string]bool{}
	for _, key := range []string{"key one", "key two"} {
		var logs bytes.Buffer
		_, ts := start(t, server.Config{LogKey: []byte(key), Logger: slog.New(slog.NewTextHandler(&logs, nil))}, fakes())
		var v api.VQAResponse
		if r := do(t, "POST", ts.URL+"/v1/vqa", "", req, &v); r.StatusCode != 200 || v.ImageSHA256 != raw {
			t.Fatalf("vqa: %d, image_sha256 %q, want %q", r.StatusCode, v.ImageSHA256, raw)
		}
		ts.Close() // flush the request log
		out := logs.String()
		if strings.Contains(out, raw) {
			t.Fatalf("log holds the raw image SHA-256:\n%s", out)
		}
		_, after, ok := strings.Cut(out, "image_hmac=")
		if !ok || len(after) < 32 {
			t.Fatalf("no image_hmac in the log:\n%s", out)
		}
		tags[after[:32]] = true
	}
	if len(tags) != 2 {
		t.Fatalf("the same image hash under two keys: %v", tags)
	}
}
