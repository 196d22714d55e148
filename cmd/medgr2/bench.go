package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/medgr2/medgr2/bench"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/backend"
	"github.com/medgr2/medgr2/server/batch"
	"github.com/medgr2/medgr2/server/fake"
	"github.com/medgr2/medgr2/server/model"
)

// benchFlags are the flags of `medgr2 bench`.
type benchFlags struct {
	url, path, key, image string
	model, tokenizer      string
	device                string
	threads               int
	clients, requests     int
	maxBatch              int
	rate                  float64
	duration              time.Duration
	fakeBatch, fakeItem   time.Duration
	asJSON                bool
}

func parseBenchFlags(args []string, stderr io.Writer) (benchFlags, error) {
	var f benchFlags
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.url, "url", "", "running server on loopback (empty: run the suite on an in-process server with fake models)")
	fs.StringVar(&f.path, "path", "/v1/vqa", "endpoint to load (with --url)")
	fs.StringVar(&f.key, "api-key", "", "bearer API key")
	fs.StringVar(&f.image, "image", "", "PNG/JPEG image for the VQA request (default: a generated 224×224 PNG)")
	fs.IntVar(&f.clients, "clients", 32, "closed-loop clients (with --url)")
	fs.Float64Var(&f.rate, "rate", 0, "open-loop requests per second (with --url; 0: closed loop)")
	fs.IntVar(&f.requests, "requests", 2000, "requests per run (bound)")
	fs.DurationVar(&f.duration, "duration", 20*time.Second, "time per run (bound)")
	fs.IntVar(&f.maxBatch, "max-batch", 32, "suite: server and baseline batch size")
	fs.StringVar(&f.model, "model", "", "suite: VQA bundle to measure; \"random\" exports a random default-size bundle "+
		"(with --tokenizer) to a temporary folder; empty: the fake model")
	fs.StringVar(&f.tokenizer, "tokenizer", filepath.Join("models", "testdata", "vqa_tokenizer.json"), "suite: tokenizer.json for --model random")
	fs.StringVar(&f.device, "device", "auto", "suite: execution device of --model: auto, cpu, cuda or cuda:N")
	fs.IntVar(&f.threads, "threads", 0, "suite: ONNX Runtime intra-op threads of --model (0: one per physical core)")
	fs.DurationVar(&f.fakeBatch, "fake-batch-cost", 20*time.Millisecond, "suite: fake model cost per batch")
	fs.DurationVar(&f.fakeItem, "fake-item-cost", 500*time.Microsecond, "suite: fake model cost per item")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, usageError(fmt.Sprintf("bench: unexpected arguments %q", fs.Args()))
	}
	return f, nil
}

// runBench implements `medgr2 bench`: one load run against --url, or
// bench.RunSuite on the model of --model and an in-process server.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	req, raw, err := benchRequest(f.image)
	if err != nil {
		return err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if f.url != "" {
		rep, err := bench.Run(ctx, bench.Config{Name: "server", URL: f.url, Path: f.path, Body: body, APIKey: f.key,
			Clients: f.clients, Rate: f.rate, Requests: f.requests, Duration: f.duration})
		if err != nil {
			return err
		}
		if f.asJSON {
			return writeJSON(stdout, rep)
		}
		return bench.WriteTable(stdout, []bench.Report{rep})
	}
	res, err := benchSuite(ctx, f, req, body, raw)
	if err != nil {
		return err
	}
	if f.asJSON {
		return writeJSON(stdout, res)
	}
	if err := bench.WriteTable(stdout, res.Reports()); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	return res.Ratios.WriteSummary(stdout)
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// benchRequest builds the VQA request and returns the raw image bytes.
func benchRequest(path string) (api.VQARequest, []byte, error) {
	var raw []byte
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return api.VQARequest{}, nil, fmt.Errorf("bench: --image: %w", err)
		}
		raw = b
	} else {
		img := image.NewGray(image.Rect(0, 0, 224, 224))
		for y := range 224 {
			for x := range 224 {
				img.SetGray(x, y, color.Gray{Y: uint8((x*y + x) % 251)})
			}
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			return api.VQARequest{}, nil, err
		}
		raw = buf.Bytes()
	}
	return api.VQARequest{Image: base64.StdEncoding.EncodeToString(raw),
		Question: "Which imaging modality is shown?", Options: []string{"CT", "MRI", "X-ray", "Ultrasound"}}, raw, nil
}

// benchModel returns the VQA model the suite measures, the image decoder
// the server and the baseline share, and a release function.
func benchModel(ctx context.Context, f benchFlags) (model.VQA, server.DecodeFunc, func() error, error) {
	if f.model == "" {
		m := fake.NewVQA(fake.Options{BatchCost: f.fakeBatch, ItemCost: f.fakeItem})
		return m, server.PreprocessingDecoder(0, 0), func() error { return nil }, nil
	}
	dev, err := runtime.ParseDevice(f.device)
	if err != nil {
		return nil, nil, nil, usageError(fmt.Sprintf("bench: --device: %v", err))
	}
	dir, cleanup := f.model, func() error { return nil }
	if f.model == "random" {
		if dir, err = os.MkdirTemp("", "medgr2-bench-"); err != nil {
			return nil, nil, nil, fmt.Errorf("bench: %w", err)
		}
		cleanup = func() error { return os.RemoveAll(dir) }
		if _, err := models.Export(ctx, dir, models.DefaultConfig(0), models.ExportOptions{Tokenizer: f.tokenizer, Seed: 1}); err != nil {
			return nil, nil, nil, errors.Join(fmt.Errorf("bench: export random bundle: %w", err), cleanup())
		}
	}
	m, err := backend.Open(ctx, backend.Options{VQA: dir, Device: dev, Threads: f.threads})
	if err != nil {
		return nil, nil, nil, errors.Join(fmt.Errorf("bench: %w", err), cleanup())
	}
	return m.VQA, m.DecodeImage(nil), func() error { return errors.Join(m.Close(), cleanup()) }, nil
}

// benchSuite runs bench.RunSuite on the model of f and an in-process
// server on loopback. The raw baseline decodes (and prepares) the image
// bytes per item, as the server does, then calls AnswerBatch directly. The
// server runs with the cache off, so every request reaches the model.
func benchSuite(ctx context.Context, f benchFlags, req api.VQARequest, body, raw []byte) (_ bench.SuiteResult, err error) {
	m, decode, release, err := benchModel(ctx, f)
	if err != nil {
		return bench.SuiteResult{}, err
	}
	defer func() { err = errors.Join(err, release()) }()
	direct := func(ctx context.Context, n int) error {
		inputs := make([]model.VQAInput, n)
		for i := range inputs {
			img, err := decode(raw)
			if err != nil {
				return err
			}
			inputs[i] = model.VQAInput{Image: img, ImageHash: fmt.Sprint(i), Question: req.Question, Options: req.Options}
		}
		_, err := m.AnswerBatch(ctx, inputs)
		return err
	}
	url, stop, err := benchServer(ctx, m, decode, f.maxBatch)
	if err != nil {
		return bench.SuiteResult{}, err
	}
	defer stop()
	return bench.RunSuite(ctx, bench.SuiteConfig{Direct: direct, URL: url, Path: "/v1/vqa", Body: body,
		MaxBatch: f.maxBatch, Requests: f.requests, Duration: f.duration})
}

// benchServer serves m on a loopback port with the cache off (every
// request reaches the model) and returns its URL and a stop function.
func benchServer(ctx context.Context, m model.VQA, decode server.DecodeFunc, maxBatch int) (string, func(), error) {
	s, err := server.New(server.Config{Batch: batch.Config{MaxBatch: maxBatch, QueueSize: 4096}, Cache: noCache{}, DecodeImage: decode,
		JobWorkers: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, server.Models{VQA: m})
	if err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("bench: listen: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, l, 5*time.Second) }()
	url := "http://" + l.Addr().String()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			return "", nil, fmt.Errorf("bench: server not ready: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return url, func() { cancel(); <-done }, nil
}

// noCache is a cache that never hits, so the bench measures the model path.
type noCache struct{}

func (noCache) Get(context.Context, string) ([]byte, bool, error)        { return nil, false, nil }
func (noCache) Set(context.Context, string, []byte, time.Duration) error { return nil }
