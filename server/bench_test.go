package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/batch"
	"github.com/medgr2/medgr2/server/cache"
	"github.com/medgr2/medgr2/server/fake"
)

// BenchmarkVQAParallel measures the HTTP + decode + batcher overhead per
// request with a zero-cost fake model and a cache that never hits.
func BenchmarkVQAParallel(b *testing.B) {
	cfg := server.Config{Batch: batch.Config{MaxBatch: 32, QueueSize: 4096}, Cache: cache.NewMemory(1), JobWorkers: -1}
	_, ts := start(b, cfg, server.Models{VQA: fake.NewVQA(fake.Options{})})
	img := dataURI("image/png", readFile(b, xrayPNG))
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			body, _ := json.Marshal(api.VQARequest{Image: img, Question: string(rune('a' + i%26)), Options: []string{"a", "b"}})
			resp, err := http.Post(ts.URL+"/v1/vqa", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}
