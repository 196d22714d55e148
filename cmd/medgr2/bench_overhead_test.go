package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/medgr2/medgr2/bench"
	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/batch"
)

// BenchmarkOverhead measures the default VQA bundle at one client on the
// default mix, the suite's way: raw (decode, preprocess and answer one
// request in this goroutine) and through the in-process server over
// loopback HTTP. server/raw in ns/op is the 1-client overhead.
// The fake model (no cost) shows the server's own part alone.
func BenchmarkOverhead(b *testing.B) {
	for _, m := range []string{benchModelFake, filepath.Join(defaultModels, "vqa")} {
		b.Run(filepath.Base(m), func(b *testing.B) {
			benchOverhead(b, benchFlags{model: m, device: "cpu", workers: 2, maxBatch: 16, data: benchData, mix: 16})
		})
	}
}

func benchOverhead(b *testing.B, f benchFlags) {
	ctx := context.Background()
	mix, err := benchMix(f)
	if err != nil {
		b.Fatal(err)
	}
	bodies, err := bench.Bodies(mix)
	if err != nil {
		b.Fatal(err)
	}
	t, err := openBenchTarget(ctx, f, mix)
	if err != nil {
		b.Fatal(err)
	}
	defer t.release()
	url, stop, err := benchServer(ctx, t.vqa, t.decode, batch.Config{MaxBatch: f.maxBatch, Workers: f.workers, QueueSize: 4096}, f.mergeBuckets)
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	b.Run("raw", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := t.raw(ctx, []int{i % len(mix)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("server", func(b *testing.B) {
		var sum api.Timing
		var outside time.Duration
		n := 0
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			resp, err := http.Post(url+"/v1/vqa", "application/json", bytes.NewReader(bodies[i%len(bodies)]))
			if err != nil {
				b.Fatal(err)
			}
			var got api.VQAResponse
			err = json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d: %v", resp.StatusCode, err)
			}
			tm := got.Timing
			outside += time.Since(t0) - time.Duration(tm.TotalMS*1e6)
			sum.DecodeMS += tm.DecodeMS
			sum.PreprocessMS += tm.PreprocessMS
			sum.QueueMS += tm.QueueMS
			sum.ModelMS += tm.ModelMS
			sum.TotalMS += tm.TotalMS
			n++
		}
		// Per request: the stages the server reports, the rest of its
		// time (handler: JSON, base64, hashing, keying, handoffs) and the
		// time outside it (client and loopback).
		f := float64(n)
		b.ReportMetric(sum.DecodeMS/f, "decode-ms")
		b.ReportMetric(sum.PreprocessMS/f, "prep-ms")
		b.ReportMetric(sum.QueueMS/f, "queue-ms")
		b.ReportMetric(sum.ModelMS/f, "model-ms")
		b.ReportMetric((sum.TotalMS-sum.DecodeMS-sum.PreprocessMS-sum.QueueMS-sum.ModelMS)/f, "handler-ms")
		b.ReportMetric(outside.Seconds()*1e3/f, "outside-ms")
	})
}
