package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/graph/graphtest"
)

// refRewardLoss is rewardObjective in float64: loss, mse and rank.
func refRewardLoss(s, t, w []float64, lc LossConfig) (loss, mse, rank float64) {
	for i := range s {
		mse += w[i] * (s[i] - t[i]) * (s[i] - t[i])
	}
	scale := lc.RankScale
	if scale == 0 {
		scale = 1
	}
	var sum, pairs float64
	for i := range s {
		for j := range s {
			if t[i] > t[j] && w[i] > 0 && w[j] > 0 {
				x := -(s[i] - s[j]) / scale
				sum += math.Max(x, 0) + math.Log1p(math.Exp(-math.Abs(x)))
				pairs++
			}
		}
	}
	rank = sum / math.Max(pairs, 1)
	return mse + lc.RankWeight*rank, mse, rank
}

// rewardLossGraph saves a graph of rewardObjective over inputs s, t, w
// ([B] each) with outputs loss, mse, rank and ds = ∂loss/∂s.
func rewardLossGraph(t *testing.T, b int, lc LossConfig) string {
	t.Helper()
	g := graph.New("reward_loss")
	s := g.Input("s", graph.Float32, graph.Dims(int64(b)))
	tg := g.Input("t", graph.Float32, graph.Dims(int64(b)))
	w := g.Input("w", graph.Float32, graph.Dims(int64(b)))
	loss, mse, rank := rewardObjective(g, s, tg, w, lc)
	if rank == nil {
		rank = g.ScalarFloat32(0)
	}
	grads, err := graph.Grad(g, loss, []*graph.Value{s})
	if err != nil {
		t.Fatal(err)
	}
	g.Output("loss", g.Reshape(loss, 1))
	g.Output("mse", g.Reshape(g.Identity(mse), 1))
	g.Output("rank", g.Reshape(rank, 1))
	g.Output("ds", grads[0])
	if err := graph.CheckDefaultDomain(g); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "reward_loss.onnx")
	if err := g.Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func f32s(x []float64) *graph.Tensor {
	v := make([]float32, len(x))
	for i, e := range x {
		v[i] = float32(e)
	}
	out, _ := graph.NewFloat32([]int64{int64(len(x))}, v)
	return out
}

// TestRewardObjectiveFiniteDifference checks the reward loss graph (MSE
// plus the pairwise ranking term) against a float64 reference: the loss
// and its terms, and ∂loss/∂score against central finite differences of
// the reference.
func TestRewardObjectiveFiniteDifference(t *testing.T) {
	ctx := context.Background()
	openEnv(t)
	cases := []struct {
		name    string
		lc      LossConfig
		s, t, w []float64
	}{
		{"mse only", LossConfig{}, []float64{1, -2, 3, 0.5}, []float64{10, 6, 0, -6}, []float64{.25, .25, .25, .25}},
		{"rank, four levels", LossConfig{RankWeight: 1}, []float64{1, -2, 3, 0.5}, []float64{10, 6, 0, -6}, []float64{.25, .25, .25, .25}},
		{"rank, ties and padding", LossConfig{RankWeight: 2.5}, []float64{0.3, 0.7, -1.2, 2, 9, -9},
			[]float64{10, 10, 6, -6, 0, 0}, []float64{.25, .25, .25, .25, 0, 0}},
		{"rank, equal scores (slope ½)", LossConfig{RankWeight: 1}, []float64{2, 2, 2, 2}, []float64{10, 6, 0, -6}, []float64{.25, .25, .25, .25}},
		{"rank, scale 4, far misordered", LossConfig{RankWeight: 1, RankScale: 4}, []float64{-200, 150, 3, 0},
			[]float64{10, 6, 0, -6}, []float64{.25, .25, .25, .25}},
		{"rank, no pairs (one level)", LossConfig{RankWeight: 1}, []float64{1, 2, 3}, []float64{6, 6, 6}, []float64{1. / 3, 1. / 3, 1. / 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sess, err := graphtest.Open(ctx, rewardLossGraph(t, len(tc.s), tc.lc), []string{"s", "t", "w"}, []string{"loss", "mse", "rank", "ds"})
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			res, err := sess.Run(ctx, map[string]*graph.Tensor{"s": f32s(tc.s), "t": f32s(tc.t), "w": f32s(tc.w)})
			if err != nil {
				t.Fatal(err)
			}
			wl, wm, wr := refRewardLoss(tc.s, tc.t, tc.w, tc.lc)
			for _, c := range []struct {
				name      string
				got, want float64
			}{{"loss", float64(res["loss"].F32[0]), wl}, {"mse", float64(res["mse"].F32[0]), wm}, {"rank", float64(res["rank"].F32[0]), wr}} {
				if tc.lc.RankWeight == 0 && c.name == "rank" {
					continue
				}
				if math.Abs(c.got-c.want) > 1e-4*(1+math.Abs(c.want)) {
					t.Errorf("%s = %.6g, reference %.6g", c.name, c.got, c.want)
				}
			}
			for i := range tc.s {
				const h = 1e-5
				sp, sm := slices.Clone(tc.s), slices.Clone(tc.s)
				sp[i], sm[i] = tc.s[i]+h, tc.s[i]-h
				lp, _, _ := refRewardLoss(sp, tc.t, tc.w, tc.lc)
				lm, _, _ := refRewardLoss(sm, tc.t, tc.w, tc.lc)
				num, got := (lp-lm)/(2*h), float64(res["ds"].F32[i])
				if math.Abs(got-num) > 1e-4*(1+math.Abs(num)) || math.IsNaN(got) {
					t.Errorf("∂loss/∂s[%d] = %.6g, finite difference %.6g", i, got, num)
				}
			}
		})
	}
}

// TestRewardRankConfig checks the ranking settings: bad values are
// ErrConfig; RankWeight 0 builds the plain MSE graph (outputs loss and
// scores), a positive weight adds the mse and rank_loss metrics.
func TestRewardRankConfig(t *testing.T) {
	cfg := tinyArch(64)
	b := Bucket{Batch: 2, Length: 8}
	for _, lc := range []LossConfig{{RankWeight: -1}, {RankWeight: math.NaN()}, {RankWeight: math.Inf(1)},
		{RankWeight: 1, RankScale: -2}, {RankWeight: 1, RankScale: math.Inf(1)}} {
		if _, err := BuildGraph(Reward, cfg, b, lc); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err = %v, want ErrConfig", lc, err)
		}
	}
	for _, tc := range []struct {
		lc   LossConfig
		want []string
	}{
		{LossConfig{}, []string{OutLoss, OutScores}},
		{LossConfig{RankWeight: 0.5}, []string{OutLoss, OutScores, OutMSE, OutRankLoss}},
	} {
		g, err := BuildGraph(Reward, cfg, b, tc.lc)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range g.Outputs() {
			got = append(got, o.Name())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("rank weight %g: outputs %v, want %v", tc.lc.RankWeight, got, tc.want)
		}
	}
}

// TestRewardRankStep runs train steps with the ranking term: the step
// reports mse and rank_loss, loss = mse + RankWeight·rank_loss, and the
// rank term falls as the head learns the batch's order.
func TestRewardRankStep(t *testing.T) {
	ctx := context.Background()
	cfg := tinyArch(64)
	st := randomState(t, cfg, true, 1)
	lc := LossConfig{RankWeight: 2}
	eng, err := NewEngine(openEnv(t), EngineConfig{Objective: Reward, Arch: cfg, Loss: lc}, st)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	b := Bucket{Batch: 6, Length: 12}
	rows := syntheticRows(4, 10, 64, 3)
	for i := range rows {
		rows[i].Target = []float32{10, 6, 0, -6}[i]
	}
	batch, err := MakeBatch(Reward, Tokens{Pad: 0, ImagePad: 5, Hidden: cfg.HiddenSize, Merge: 2}, rows, b, false)
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Close()
	var first, last StepResult
	for i := range 40 {
		if last, err = eng.Step(ctx, b, batch.Tensors, 1e-2); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = last
		}
	}
	for _, r := range []StepResult{first, last} {
		mse, okM := r.Metrics[OutMSE]
		rank, okR := r.Metrics[OutRankLoss]
		if !okM || !okR {
			t.Fatalf("step metrics %v lack %s or %s", r.Metrics, OutMSE, OutRankLoss)
		}
		if want := mse + lc.RankWeight*rank; math.Abs(r.Loss-want) > 1e-4*(1+want) {
			t.Errorf("loss %.6g, want mse + %g·rank = %.6g", r.Loss, lc.RankWeight, want)
		}
	}
	t.Logf("rank_loss %.4f → %.4f, mse %.3f → %.3f, scores %v", first.Metrics[OutRankLoss], last.Metrics[OutRankLoss],
		first.Metrics[OutMSE], last.Metrics[OutMSE], last.Vectors[OutScores])
	if !(last.Metrics[OutRankLoss] < first.Metrics[OutRankLoss]/4) {
		t.Fatalf("rank term did not fall: %.4f → %.4f", first.Metrics[OutRankLoss], last.Metrics[OutRankLoss])
	}
}

// TestLoaderKeepsGroups checks item-grouped batching: every row comes once
// per epoch, a group's rows share a batch (groups larger than the batch
// are split into batch-sized chunks), a group takes its longest row's
// bucket, and ungrouped rows are batched as before.
func TestLoaderKeepsGroups(t *testing.T) {
	mk := func(groups []string, lens []int) []Row {
		rows := make([]Row, len(groups))
		for i := range rows {
			rows[i] = Row{IDs: make([]int, lens[i]), Target: float32(i), Group: groups[i]}
		}
		return rows
	}
	bs := Buckets{Batch: 8, Lengths: []int{16, 32}}
	var groups []string
	var lens []int
	for i := range 40 { // 10 items × 4 samples, interleaved; item 3 has a long row
		groups = append(groups, fmt.Sprintf("q%d", i%10))
		lens = append(lens, 10+boolInt(i == 13)*10)
	}
	groups = append(groups, "", "", "big", "big", "big", "big", "big", "big", "big", "big", "big", "big")
	lens = append(lens, 5, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7)
	rows := mk(groups, lens)
	l, err := NewLoader(rows, bs, 7)
	if err != nil {
		t.Fatal(err)
	}
	for epoch := range 2 {
		seen := map[float32]int{}
		n := 1 // the epoch's batch count is known once its first batch is out (packing varies)
		for k := 0; k < n; k++ {
			batch, b := l.Next()
			n = l.BatchesPerEpoch()
			if len(batch) == 0 || len(batch) > bs.Batch {
				t.Fatalf("epoch %d: batch of %d rows", epoch, len(batch))
			}
			count := map[string]int{}
			for _, r := range batch {
				seen[r.Target]++
				count[r.Group]++
				if len(r.IDs) > b.Length {
					t.Fatalf("a %d-token row in a %d bucket", len(r.IDs), b.Length)
				}
				if r.Group == "q3" && b.Length != 32 {
					t.Errorf("group q3 (one 20-token row) batched at length %d, want 32", b.Length)
				}
			}
			for g, n := range count {
				if g != "" && g != "big" && n != 4 {
					t.Errorf("epoch %d: batch holds %d rows of %s, want all 4", epoch, n, g)
				}
				if g == "big" && n != 8 && n != 2 {
					t.Errorf("epoch %d: batch holds %d rows of the 10-row group, want a chunk of 8 or 2", epoch, n)
				}
			}
		}
		if len(seen) != len(rows) {
			t.Fatalf("epoch %d: %d distinct rows, want %d", epoch, len(seen), len(rows))
		}
		for k, n := range seen {
			if n != 1 {
				t.Fatalf("epoch %d: row %g seen %d times", epoch, k, n)
			}
		}
	}
	plain := mk(make([]string, 40), lens[:40])
	a, _ := NewLoader(plain, bs, 7)
	if a.units != nil {
		t.Fatal("ungrouped rows planned as groups")
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
