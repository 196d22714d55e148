package queue

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/internal/redistest"
)

// BenchmarkStores measures a 2,000-item job through each store: Submit,
// then a 16-way Worker claiming and completing every item (a no-op
// ProcessFunc), until the job is done. items/s counts completions.
func BenchmarkStores(b *testing.B) {
	const n = 2000
	rs := redistest.Start(b)
	for _, bc := range []struct {
		name string
		open func(b *testing.B) Store
	}{
		{"bolt", func(b *testing.B) Store { return openBolt(b, b.TempDir(), BoltConfig{Block: 10 * time.Millisecond}) }},
		{"redis-aof-always", func(b *testing.B) Store {
			return NewRedis(rs.Client(), RedisConfig{Prefix: b.Name() + ":", Block: 10 * time.Millisecond})
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st := bc.open(b)
			ctx := context.Background()
			var submit time.Duration
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				id, err := st.Submit(ctx, api.JobKindScore, "k", items(n))
				if err != nil {
					b.Fatal(err)
				}
				submit += time.Since(t0)
				wctx, cancel := context.WithCancel(ctx)
				w := &Worker{Store: st, Concurrency: 16, Drain: time.Second,
					Process: func(_ context.Context, _ string, p []byte) (json.RawMessage, error) { return p, nil }}
				done := make(chan struct{})
				go func() { w.Run(wctx); close(done) }()
				for {
					s, err := st.Status(ctx, id)
					if err != nil {
						b.Fatal(err)
					}
					if s.State == api.JobDone {
						break
					}
					time.Sleep(time.Millisecond)
				}
				cancel()
				<-done
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "items/s")
			b.ReportMetric(submit.Seconds()*1000/float64(b.N), "submit-ms/op")
		})
	}
}
