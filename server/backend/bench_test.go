package backend_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/medgr2/medgr2/server/backend"
	"github.com/medgr2/medgr2/server/batch"
	"github.com/medgr2/medgr2/server/model"
)

// BenchmarkAnswerBatch runs the fast VQA path of the random default-size
// bundle on a real 224×224 image at several batch sizes; compare
// ms/item across sizes for the batching gain on this machine:
//
//	go test ./server/backend -run '^$' -bench AnswerBatch -benchtime 5x
func BenchmarkAnswerBatch(b *testing.B) {
	m := open(b, backend.Options{VQA: bundles.vqa, Threads: benchThreads})
	dec := m.DecodeImage(nil)
	img, err := dec(readFile(b, kneePNG))
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("batch%d", n), func(b *testing.B) {
			in := make([]model.VQAInput, n)
			for i := range in {
				in[i] = model.VQAInput{Image: img, Question: fmt.Sprintf("Question %d: which imaging modality is shown?", i),
					Options: []string{"CT", "MRI", "X-ray", "Ultrasound"}}
			}
			for b.Loop() {
				if _, err := m.VQA.AnswerBatch(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*n), "ms/item")
		})
	}
}

// defaultVQA is the repository's default VQA bundle (models/default).
const defaultVQA = "../../models/default/vqa"

// benchThreads is the intra-op thread count of the benchmarks: 2, the
// cores of the CI machine (the tests use 1).
const benchThreads = 2

// BenchmarkServe serves 64 requests of the real mix (realMix) through a
// batcher over the default VQA bundle, as the server does:
// images decoded and processed before the timer (the server does that in
// the request goroutines), each request keyed by its text length in bytes
// (key=text, the server's key before prompt-token buckets) or by its
// prompt-token bucket (key=length, batch.LengthKey), from 1 or 32 clients
// at once, with several batch sizes, worker and intra-op thread counts
// (threads=0: ORT's choice). It reports req/s and the padding share of the batches;
// compare sub-benchmarks of one run:
//
//	go test ./server/backend -run '^$' -bench Serve -benchtime 2x
func BenchmarkServe(b *testing.B) {
	mix := realMix(b, 64)
	for _, c := range []struct {
		key                                 string
		clients, maxBatch, workers, threads int
	}{
		{"text", 1, 16, 1, 0}, {"text", 32, 16, 1, 0},
		{"length", 32, 16, 1, 0}, {"length", 32, 16, 2, 1}, {"length", 32, 16, 2, 0},
		{"length", 32, 4, 2, 1}, {"length", 32, 1, 2, 1}, {"length", 32, 1, 1, 0},
	} {
		name := fmt.Sprintf("key=%s/clients=%d/maxbatch=%d/workers=%d/threads=%d", c.key, c.clients, c.maxBatch, c.workers, c.threads)
		b.Run(name, func(b *testing.B) {
			m := open(b, backend.Options{VQA: defaultVQA, Threads: c.threads, Workers: c.workers})
			in := inputs(b, m.DecodeImage(nil), mix)
			keys := make([]int, len(in))
			for i, x := range in {
				ids, err := m.VQA.PromptIDs(x)
				if err != nil {
					b.Fatal(err)
				}
				n := len(ids)
				in[i].PromptIDs = ids
				keys[i] = batch.LengthKey(n, 0)
				if c.key == "text" {
					keys[i] = len(x.Question) / 256
					for _, o := range x.Options {
						keys[i] += len(o) / 256
					}
				}
			}
			var pad batch.PaddingMeter
			run := func(ctx context.Context, in []model.VQAInput) ([]model.VQAOutput, error) {
				lengths := make([]int, len(in))
				for i, x := range in {
					lengths[i] = len(x.PromptIDs)
				}
				pad.Observe(lengths)
				return m.VQA.AnswerBatch(ctx, in)
			}
			bt := batch.New(batch.Config{Name: "vqa", MaxBatch: c.maxBatch, Workers: c.workers, QueueSize: len(in)}, run)
			defer bt.Close(context.Background())
			for b.Loop() {
				serveClients(b, bt, in, keys, c.clients)
			}
			b.ReportMetric(float64(b.N*len(in))/b.Elapsed().Seconds(), "req/s")
			b.ReportMetric(pad.Share(), "padding")
		})
	}
}

// serveClients submits every input to bt with its key from the given
// number of concurrent clients, each taking the next input when its last
// one is answered.
func serveClients(b *testing.B, bt *batch.Batcher[model.VQAInput, model.VQAOutput], in []model.VQAInput, keys []int, clients int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(in); i = int(next.Add(1)) - 1 {
				if _, _, err := bt.Submit(context.Background(), in[i], keys[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkDecodeImage runs backend.DecodeImage on a real 640×480 BCCD
// JPEG: decode, resize and patchify every time (pixel cache off) against
// a pixel-cache hit (SHA-256 of the bytes and a lookup).
//
//	go test ./server/backend -run '^$' -bench DecodeImage
func BenchmarkDecodeImage(b *testing.B) {
	raw := readFile(b, "../../../shared/data/bccd/images/BloodImage_00000.jpg")
	for _, c := range []struct {
		name  string
		bytes int64
	}{{"cache=off", -1}, {"cache=hit", 0}} {
		b.Run(c.name, func(b *testing.B) {
			dec := open(b, backend.Options{VQA: defaultVQA, PixelCacheBytes: c.bytes}).DecodeImage(nil)
			if _, err := dec(raw); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := dec(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
