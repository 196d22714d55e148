package backend

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/server/model"
)

// TestReleaserTick checks when an idle release reopens a bundle: only
// after a call, with no call in flight, after the idle time, and with
// resident memory over its baseline by more than ReleaseGrowth; and that
// the reopened bundle answers as the old one did.
func TestReleaserTick(t *testing.T) {
	const idle = time.Minute
	cases := []struct {
		name     string
		call     bool          // a call ran since the load
		inflight bool          // a call holds the slot at the tick
		after    time.Duration // tick this long after the last call
		rss      int64         // resident bytes at the tick (baseline 100)
		want     int           // bundles reopened
	}{
		{"grown after a call", true, false, 2 * idle, 200, 1},
		{"grown, no call", false, false, 2 * idle, 200, 0},
		{"within the growth", true, false, 2 * idle, 110, 0},
		{"not idle long enough", true, false, idle / 2, 200, 0},
		{"call in flight", true, true, 2 * idle, 200, 0},
	}
	ctx := context.Background()
	q := []model.VQAInput{{Question: "Which modality?", Options: []string{"CT", "X-ray", "MRI"}}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Open(ctx, Options{VQA: "../../models/default/vqa", Device: runtime.CPU, Threads: 1, IdleRelease: -1})
			if err != nil {
				t.Fatalf("Open (ONNX Runtime is required): %v", err)
			}
			defer func() {
				if err := m.Close(); err != nil {
					t.Error(err)
				}
			}()
			before, err := m.VQA.AnswerBatch(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			s := m.slots[0]
			if !c.call {
				s.used.Store(false)
			}
			if c.inflight {
				_, done := s.use()
				defer done()
			}
			old := s.v
			r := &releaser{slots: m.slots, idle: idle, base: 100, log: slog.New(slog.DiscardHandler), trim: func() {},
				rss: func() (int64, error) { return c.rss, nil },
				open: func(ctx context.Context, dir string) (*models.VLM, error) {
					return m.openVLM(ctx, dir, Options{Device: runtime.CPU, Threads: 1})
				}}
			n, err := r.tick(ctx, time.Unix(0, s.last.Load()).Add(c.after))
			if err != nil {
				t.Fatal(err)
			}
			if n != c.want {
				t.Fatalf("reopened %d, want %d", n, c.want)
			}
			if (s.v != old) != (c.want > 0) {
				t.Fatalf("bundle swapped = %v, want %v", s.v != old, c.want > 0)
			}
			if c.want == 0 {
				return
			}
			if s.used.Load() {
				t.Error("a reopened slot is marked used")
			}
			after, err := m.VQA.AnswerBatch(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if after[0].Answer != before[0].Answer || after[0].Probs[0] != before[0].Probs[0] {
				t.Errorf("after the reopen %+v, before %+v", after[0], before[0])
			}
		})
	}
}
