package backend_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/medgr2/medgr2/server/backend"
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

// benchThreads is the intra-op thread count of the benchmarks: 2, the
// cores of the CI machine (the tests use 1).
const benchThreads = 2
