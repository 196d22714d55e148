package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/batch"
	"github.com/medgr2/medgr2/server/fake"
)

// Real images from the shared data folder (see ../shared/data/README.md).
const (
	xrayPNG  = "../../shared/data/pneumoniamnist/test/pneumoniamnist_test_00001.png"
	smearJPG = "../../shared/data/bccd/images/BloodImage_00000.jpg"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("shared test data missing (%s): %v", path, err)
	}
	return b
}

func dataURI(mime string, b []byte) string {
	return "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(b)
}

// fakes returns fake models of every role with a small per-batch cost.
func fakes() server.Models {
	o := fake.Options{BatchCost: time.Millisecond}
	return server.Models{VQA: fake.NewVQA(o), Generator: fake.NewGenerator(o), Reward: fake.NewReward(o), Chat: fake.NewChat(o)}
}

// start runs a server on httptest with fake models; cfg tweaks the config.
func start(t testing.TB, cfg server.Config, models server.Models) (*server.Server, *httptest.Server) {
	t.Helper()
	if cfg.Batch.MaxBatch == 0 {
		cfg.Batch = batch.Config{MaxBatch: 8}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := server.New(cfg, models)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Warmup(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s, ts
}

// do sends body (string, []byte or a JSON-encodable value) and decodes the
// JSON answer into out (if not nil); it returns the response.
func do(t testing.TB, method, url, key string, body any, out any) *http.Response {
	t.Helper()
	var r io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewReader([]byte(b))
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: status %d, body %q: %v", method, url, resp.StatusCode, raw, err)
		}
	}
	return resp
}

// httptestServer serves s without warming it up.
func httptestServer(t testing.TB, s *server.Server) string {
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}
