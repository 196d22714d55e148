package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/medgr2/medgr2/bench"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/backend"
	"github.com/medgr2/medgr2/server/batch"
	"github.com/medgr2/medgr2/server/cache"
	"github.com/medgr2/medgr2/server/fake"
	"github.com/medgr2/medgr2/server/model"
)

// benchMaxImageBytes is the server's per-image limit in the suite (serve's
// default), which the raw baseline's decoder applies too.
const benchMaxImageBytes = 16 << 20

// benchTarget is what the suite measures: the model as the server serves
// it, the server's image decoder, the raw baseline and its batches.
type benchTarget struct {
	vqa    model.VQA
	decode server.DecodeFunc // the server's: decode, then the model's image processor
	// raw does for mix[batch…] the work the server does (decode,
	// preprocess, model), as one model call.
	raw func(ctx context.Context, batch []int) error
	// lengths are the prompt tokens of each mix request; nil when the
	// model does not count them (the fake), so the raw batches take the
	// mix in order.
	lengths []int
	release func() error
}

// benchSuite runs bench.RunSuite on the model of f and an in-process
// server on loopback that serves it as `medgr2 serve` does (its workers,
// batch size and threads), with the response cache off and, unless
// --pixel-cache, the pixel cache off, so every request is decoded and
// reaches the model.
func benchSuite(ctx context.Context, f benchFlags, mix []bench.Item, bodies [][]byte) (_ benchRecord, err error) {
	rec := newBenchRecord(f, mix)
	t, err := openBenchTarget(ctx, f, mix)
	if err != nil {
		return rec, err
	}
	defer func() { err = errors.Join(err, t.release()) }()
	url, stop, err := benchServer(ctx, t.vqa, t.decode, batch.Config{MaxBatch: f.maxBatch, Workers: f.workers, QueueSize: 4096}, f.mergeBuckets)
	if err != nil {
		return rec, err
	}
	defer stop()
	batches := rawBatches(t.lengths, len(mix), f.maxBatch, f.mergeBuckets)
	load := startLoad()
	rec.Suite, err = bench.RunSuite(ctx, bench.SuiteConfig{Direct: t.raw, Bodies: bodies, Batches: batches,
		URL: url, Path: "/v1/vqa", MaxBatch: f.maxBatch, Workers: f.workers, Requests: f.maxRequests, Duration: f.duration, Rounds: f.rounds})
	rec.OtherCPU = load.otherShare(rec.Cores)
	if err == nil && t.lengths != nil {
		// The raw runs' padding, from one pass over their batches.
		rec.Suite.Raw.Padding = bench.BatchesPadding(t.lengths, batches)
		rec.Suite.RawSerial.Padding = bench.BatchesPadding(t.lengths, bench.Singles(len(mix)))
	}
	return rec, err
}

// rawBatches groups the mix as the server's batcher does at saturation,
// with the whole mix queued: by prompt-length bucket (batch.LengthKey),
// with up to merge shorter buckets in a batch that has room (server.
// Config.MergeBuckets), at most maxBatch at a time
// (batch.Plan). Without lengths it takes the mix in order.
func rawBatches(lengths []int, n, maxBatch, merge int) [][]int {
	if lengths == nil {
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		return bench.Chunks([][]int{all}, maxBatch)
	}
	keys := make([]int, len(lengths))
	for i, l := range lengths {
		keys[i] = batch.LengthKey(l, 0)
	}
	return batch.Plan(batch.Config{MaxBatch: maxBatch, MergeKeys: max(merge, 0)}, keys)
}

// openBenchTarget opens the model f names.
func openBenchTarget(ctx context.Context, f benchFlags, mix []bench.Item) (benchTarget, error) {
	decode := server.PreprocessingDecoder(preprocessing.Limits{MaxBytes: benchMaxImageBytes})
	if f.model == benchModelFake {
		m := fake.NewVQA(fake.Options{BatchCost: f.fakeBatch, ItemCost: f.fakeItem})
		raw := func(ctx context.Context, b []int) error {
			in := make([]model.VQAInput, len(b))
			for k, i := range b {
				img, err := decode(mix[i].Image)
				if err != nil {
					return fmt.Errorf("bench: request %d: %w", i, err)
				}
				in[k] = model.VQAInput{Image: img, Question: mix[i].Question, Options: mix[i].Options}
			}
			_, err := m.AnswerBatch(ctx, in)
			return err
		}
		return benchTarget{vqa: m, decode: decode, raw: raw, release: func() error { return nil }}, nil
	}
	dev, err := runtime.ParseDevice(f.device)
	if err != nil {
		return benchTarget{}, usageError(fmt.Sprintf("bench: --device: %v", err))
	}
	dir, cleanup := f.model, func() error { return nil }
	if f.model == benchModelRandom {
		if dir, err = os.MkdirTemp("", "medgr2-bench-"); err != nil {
			return benchTarget{}, fmt.Errorf("bench: %w", err)
		}
		cleanup = func() error { return os.RemoveAll(dir) }
		if _, err := models.Export(ctx, dir, models.DefaultConfig(0), models.ExportOptions{Tokenizer: f.tokenizer, Seed: 1}); err != nil {
			return benchTarget{}, errors.Join(fmt.Errorf("bench: export random bundle: %w", err), cleanup())
		}
	}
	cache := int64(-1)
	if f.pixelCache {
		cache = 0
	}
	m, err := backend.Open(ctx, backend.Options{VQA: dir, Device: dev, Threads: f.threads, Workers: f.workers, PixelCacheBytes: cache,
		IdleRelease: -1}) // the raw baseline holds VQA.VLM for the whole suite
	if err != nil {
		return benchTarget{}, errors.Join(fmt.Errorf("bench: %w", err), cleanup())
	}
	t := benchTarget{vqa: m.VQA, decode: m.DecodeImage(decode), release: func() error { return errors.Join(m.Close(), cleanup()) }}
	t.raw = rawAnswer(m.VQA.VLM(), decode, mix)
	if t.lengths, err = promptLengths(m.VQA, decode, mix); err != nil {
		return benchTarget{}, errors.Join(err, t.release())
	}
	return t, nil
}

// rawAnswer returns the raw baseline on v: for each request of the batch,
// decode its image and run the bundle's image processor, then answer the
// batch with models.VLM.Answer (fast mode), as the server's backend does.
func rawAnswer(v *models.VLM, decode server.DecodeFunc, mix []bench.Item) func(ctx context.Context, b []int) error {
	return func(ctx context.Context, b []int) error {
		reqs := make([]models.VQARequest, len(b))
		for k, i := range b {
			img, err := decode(mix[i].Image)
			if err != nil {
				return fmt.Errorf("bench: request %d: %w", i, err)
			}
			px, err := v.ProcessImage(img.Decoded)
			if err != nil {
				return fmt.Errorf("bench: request %d: %w", i, err)
			}
			reqs[k] = models.VQARequest{Pixels: px, Question: mix[i].Question, Options: mix[i].Options, Mode: models.ModeFast}
		}
		_, err := v.Answer(ctx, reqs, models.ReasonOptions{})
		return err
	}
}

// promptLengths counts each request's prompt tokens as the server does
// to key its batches.
func promptLengths(pc model.PromptCounter, decode server.DecodeFunc, mix []bench.Item) ([]int, error) {
	out := make([]int, len(mix))
	for i, it := range mix {
		img, err := decode(it.Image)
		if err != nil {
			return nil, fmt.Errorf("bench: request %d (%s): %w", i, it.Source, err)
		}
		ids, err := pc.PromptIDs(model.VQAInput{Image: img, Question: it.Question, Options: it.Options})
		if err != nil {
			return nil, fmt.Errorf("bench: request %d (%s): %w", i, it.Source, err)
		}
		out[i] = len(ids)
	}
	return out, nil
}

// benchServer serves m on a loopback port with the response cache off
// (every request reaches the model) and returns its URL and a stop
// function.
func benchServer(ctx context.Context, m model.VQA, decode server.DecodeFunc, bc batch.Config, merge int) (string, func(), error) {
	s, err := server.New(server.Config{Batch: bc, MergeBuckets: merge, Cache: cache.Off{}, DecodeImage: decode, MaxImageBytes: benchMaxImageBytes,
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
