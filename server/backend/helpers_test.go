package backend_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/backend"
	"github.com/medgr2/medgr2/server/batch"
)

// Test inputs: the 1024-id test tokenizer of package models and real
// images from ../shared/data (see its README).
const (
	testTokenizer = "../../models/testdata/vqa_tokenizer.json"
	xrayPNG       = "../../../shared/data/pneumoniamnist/test/pneumoniamnist_test_00001.png"
	kneePNG       = "../../../shared/data/omnimedvqa-real/images/knee/val/3/9246518R.png"
	crDICOM       = "../../preprocessing/testdata/cr_chest_monochrome1.dcm"
)

// bundles are random default-size bundles exported once for the package:
// a VQA+generator bundle and a reward bundle.
var bundles struct{ vqa, reward string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "medgr2-backend-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if err := exportBundles(dir); err != nil {
			fmt.Fprintln(os.Stderr, "export test bundles:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func exportBundles(dir string) error {
	ctx := context.Background()
	cfg := models.DefaultConfig(0)
	cfg.InitStd = 0.2 // logits far from uniform
	bundles.vqa, bundles.reward = dir+"/vqa", dir+"/reward"
	if _, err := models.Export(ctx, bundles.vqa, cfg, models.ExportOptions{Name: "test-vqa", Version: "7",
		Tokenizer: testTokenizer, Roles: []models.Role{models.RoleVQA, models.RoleGenerator}, Seed: 1}); err != nil {
		return err
	}
	_, err := models.Export(ctx, bundles.reward, cfg, models.ExportOptions{Name: "test-reward", Version: "3",
		Tokenizer: testTokenizer, Roles: []models.Role{models.RoleReward}, Seed: 2})
	return err
}

// open opens the test bundles on the CPU; ONNX Runtime is required.
func open(t testing.TB, o backend.Options) *backend.Models {
	t.Helper()
	o.Device = runtime.CPU
	if o.Threads == 0 {
		o.Threads = 1
	}
	if o.ReasonMaxTokens == 0 {
		o.ReasonMaxTokens = 24
	}
	if o.GenerateMaxTokens == 0 {
		o.GenerateMaxTokens = 24
	}
	m, err := backend.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("backend.Open (ONNX Runtime is required): %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// serve starts a warmed-up server over m on a loopback httptest server.
func serve(t testing.TB, m *backend.Models, cfg server.Config) string {
	t.Helper()
	cfg.Batch = batch.Config{MaxBatch: 8}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.DecodeImage = m.DecodeImage(server.PreprocessingDecoder(cfg.ImageLimits()))
	s, err := server.New(cfg, m.Server())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Warmup(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return ts.URL
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("test data missing (%s): %v", path, err)
	}
	return b
}

func dataURI(mime string, b []byte) string {
	return "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(b)
}

// serverConfig is the server configuration of the end-to-end tests.
func serverConfig() server.Config { return server.Config{} }
