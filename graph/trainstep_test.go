package graph_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/graph/graphtest"
)

// tinyLM builds a float32 forward graph: embedding → RMSNorm → MLP →
// frozen head → cross-entropy, with an accuracy metric (non-differentiable
// ArgMax path) beside the loss.
func tinyLM(batch, seq, vocab, dim int64) *graph.Graph {
	dt := graph.Float32
	g := graph.New("tiny_lm")
	ids := g.Input("input_ids", graph.Int64, graph.Dims(batch, seq))
	targets := g.Input("labels", graph.Int64, graph.Dims(batch, seq))
	emb := g.Input("embed.weight", dt, graph.Dims(vocab, dim))
	norm := g.Input("norm.weight", dt, graph.Dims(dim))
	up := g.Input("mlp.up.weight", dt, graph.Dims(dim, 2*dim))
	upB := g.Input("mlp.up.bias", dt, graph.Dims(2*dim))
	down := g.Input("mlp.down.weight", dt, graph.Dims(2*dim, dim))
	head := g.Input("head.weight", dt, graph.Dims(dim, vocab))
	x := g.Gather(emb, ids, 0)
	h := g.Add(g.MatMul(rmsNorm(g, x, norm, dt), up), upB)
	x = g.Add(x, g.MatMul(g.Mul(h, g.Sigmoid(h)), down))
	logits := g.Reshape(g.MatMul(x, head), batch*seq, vocab)
	flatT := g.Reshape(targets, batch*seq)
	g.Output("loss", g.Reshape(crossEntropy(g, logits, flatT), 1))
	hit := g.Cast(g.Equal(g.ArgMax(logits, -1, false), flatT), dt)
	g.Output("accuracy", g.Reshape(g.ReduceMean(hit, nil, false), 1))
	return g
}

var tinyParams = []string{"embed.weight", "norm.weight", "mlp.up.weight", "mlp.up.bias", "mlp.down.weight", "head.weight"}

func TestTrainStepLearns(t *testing.T) {
	ctx := context.Background()
	const batch, seq, vocab, dim = 2, 5, 11, 8
	g := tinyLM(batch, seq, vocab, dim)
	ts, err := graph.BuildTrainStep(g, graph.TrainStepConfig{Params: tinyParams, Freeze: []string{"head."}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts.Params) != 5 || len(ts.Frozen) != 1 || ts.Frozen[0] != "head.weight" {
		t.Fatalf("params %v frozen %v", ts.Params, ts.Frozen)
	}
	if strings.Join(ts.Metrics, ",") != "accuracy" {
		t.Fatalf("metrics %v", ts.Metrics)
	}
	decay := map[string]bool{}
	for _, p := range ts.Params {
		decay[p.Name] = p.Decay
	}
	if !decay["mlp.up.weight"] || decay["mlp.up.bias"] || decay["norm.weight"] {
		t.Fatalf("weight-decay mask %v", decay)
	}
	path := filepath.Join(t.TempDir(), "train_step.onnx")
	if err := g.Save(path); err != nil {
		t.Fatal(err)
	}
	s, err := graphtest.Open(ctx, path, ts.InputNames(), ts.OutputNames())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	feeds := tinyFeeds(rng, g, ts)
	var first, last float32
	for step := 1; step <= 40; step++ {
		feeds[ts.Step] = f32(t, []int64{1}, float32(step))
		feeds[ts.LR] = f32(t, []int64{1}, 0.02)
		res, err := s.Run(ctx, feeds)
		if err != nil {
			t.Fatal(err)
		}
		if step == 1 {
			first = res[ts.Loss].F32[0]
			if gn := res[ts.GradNorm].F32[0]; !(gn > 0) {
				t.Fatalf("grad_norm %v", gn)
			}
		}
		last = res[ts.Loss].F32[0]
		for _, p := range ts.Params {
			feeds[p.Name], feeds[p.M], feeds[p.V] = res[p.New], res[p.NewM], res[p.NewV]
		}
		if acc := res["accuracy"].F32[0]; acc < 0 || acc > 1 {
			t.Fatalf("accuracy metric %v", acc)
		}
	}
	t.Logf("loss %.4f → %.4f after 40 steps", first, last)
	if !(last < 0.5*first) {
		t.Fatalf("loss went from %v to %v in 40 steps on one batch", first, last)
	}
}

// tinyFeeds draws a batch and initial parameters; moments start at zero.
func tinyFeeds(rng *rand.Rand, g *graph.Graph, ts *graph.TrainStep) map[string]*graph.Tensor {
	feeds := map[string]*graph.Tensor{}
	for _, name := range ts.Batch {
		v, _ := g.Lookup(name)
		n := v.Shape().NumElements()
		if v.DType() == graph.Int64 {
			ids := make([]int64, n)
			for i := range ids {
				ids[i] = rng.Int64N(11)
			}
			feeds[name], _ = graph.NewInt64(v.Shape().Sizes(), ids)
			continue
		}
		feeds[name] = randF32(rng, v.Shape().Sizes(), 0.3)
	}
	for _, p := range ts.Params {
		feeds[p.Name] = randF32(rng, p.Shape.Sizes(), 0.3)
		feeds[p.M] = randF32(rng, p.Shape.Sizes(), 0)
		feeds[p.V] = randF32(rng, p.Shape.Sizes(), 0)
	}
	return feeds
}

func randF32(rng *rand.Rand, dims []int64, scale float64) *graph.Tensor {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * scale)
	}
	t, _ := graph.NewFloat32(dims, v)
	return t
}

func TestTrainStepBadInput(t *testing.T) {
	cases := []struct {
		name string
		cfg  graph.TrainStepConfig
		want error
		msg  string
	}{
		{"no-loss-output", graph.TrainStepConfig{Loss: "nll", Params: tinyParams}, graph.ErrInvalidArg, `no output "nll"`},
		{"param-not-input", graph.TrainStepConfig{Params: []string{"lm.missing"}}, graph.ErrInvalidArg, `"lm.missing" is not a graph input`},
		{"int-param", graph.TrainStepConfig{Params: []string{"input_ids"}}, graph.ErrNotDifferential, "input_ids"},
		{"all-frozen", graph.TrainStepConfig{Params: tinyParams, Freeze: []string{"embed", "norm", "mlp", "head"}}, graph.ErrInvalidArg, "no trainable parameters"},
		{"duplicate", graph.TrainStepConfig{Params: []string{"norm.weight", "norm.weight"}}, graph.ErrInvalidArg, "listed twice"},
		{"bad-adamw", graph.TrainStepConfig{Params: tinyParams, AdamW: graph.AdamWConfig{Beta1: 2}}, graph.ErrInvalidArg, "betas"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := graph.BuildTrainStep(tinyLM(1, 2, 11, 4), tc.cfg)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
		})
	}
	// A non-scalar loss output.
	g := graph.New("vector_loss")
	w := g.Input("w", graph.Float32, graph.Dims(3))
	g.Output("loss", g.Mul(w, w))
	if _, err := graph.BuildTrainStep(g, graph.TrainStepConfig{Params: []string{"w"}}); !errors.Is(err, graph.ErrLossNotScalar) {
		t.Fatalf("vector loss: %v", err)
	}
}

// BenchmarkTinyLM times the forward graph against the whole train step
// (forward, backward, clipping, AdamW) on the same bucket; the trainer's
// benchmarks follow this pattern for real models.
func BenchmarkTinyLM(b *testing.B) {
	for _, train := range []bool{false, true} {
		name := "forward"
		if train {
			name = "train_step"
		}
		b.Run(name, func(b *testing.B) { benchTinyLM(b, train) })
	}
}

func benchTinyLM(b *testing.B, train bool) {
	ctx := context.Background()
	g := tinyLM(8, 64, 512, 64)
	ts, err := graph.BuildTrainStep(g, graph.TrainStepConfig{Params: tinyParams})
	if err != nil {
		b.Fatal(err)
	}
	inputs, outputs := ts.InputNames(), ts.OutputNames()
	if !train {
		// ONNX Runtime does not prune unused nodes: time a separate forward graph.
		g = tinyLM(8, 64, 512, 64)
		inputs, outputs = nil, []string{ts.Loss}
		for _, in := range g.Inputs() {
			inputs = append(inputs, in.Name())
		}
	}
	path := filepath.Join(b.TempDir(), "m.onnx")
	if err := g.Save(path); err != nil {
		b.Fatal(err)
	}
	s, err := graphtest.Open(ctx, path, inputs, outputs)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	feeds := tinyFeeds(rand.New(rand.NewPCG(1, 1)), g, ts)
	feeds[ts.Step], _ = graph.NewFloat32([]int64{1}, []float32{1})
	feeds[ts.LR], _ = graph.NewFloat32([]int64{1}, []float32{1e-3})
	b.ResetTimer()
	for range b.N {
		if _, err := s.Run(ctx, feeds); err != nil {
			b.Fatal(err)
		}
	}
}
