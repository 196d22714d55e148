package graph_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/graph/graphtest"
)

// refAdamW is a plain-Go AdamW (torch.optim.AdamW arithmetic) with
// global-norm clipping, the reference for the in-graph optimizer.
type refAdamW struct {
	cfg graph.AdamWConfig
	lr  float64
}

func (o refAdamW) step(t int, params, grads, ms, vs [][]float64, decay []bool) float64 {
	total := 0.0
	for _, g := range grads {
		for _, x := range g {
			total += x * x
		}
	}
	norm := math.Sqrt(total)
	coef := 1.0
	if o.cfg.MaxGradNorm > 0 {
		coef = math.Min(1, o.cfg.MaxGradNorm/(norm+1e-6))
	}
	bc1 := 1 - math.Pow(o.cfg.Beta1, float64(t))
	bc2 := 1 - math.Pow(o.cfg.Beta2, float64(t))
	for i, p := range params {
		for j := range p {
			g := grads[i][j] * coef
			if decay[i] {
				p[j] *= 1 - o.lr*o.cfg.WeightDecay
			}
			ms[i][j] = o.cfg.Beta1*ms[i][j] + (1-o.cfg.Beta1)*g
			vs[i][j] = o.cfg.Beta2*vs[i][j] + (1-o.cfg.Beta2)*g*g
			p[j] -= o.lr / bc1 * ms[i][j] / (math.Sqrt(vs[i][j])/math.Sqrt(bc2) + o.cfg.Eps)
		}
	}
	return norm
}

// adamWGraph feeds parameters, gradients and moments as inputs and returns
// the clipped AdamW update.
// With fused it builds the same update with ClipAdamW instead.
func adamWGraph(t *testing.T, dt graph.DType, shapes [][]int64, decay []bool, cfg graph.AdamWConfig, fused bool) string {
	t.Helper()
	g := graph.New("adamw")
	var slots []graph.AdamWSlot
	var grads []*graph.Value
	for i, s := range shapes {
		p := g.Input(pname(i), dt, graph.Dims(s...))
		grads = append(grads, g.Input(pname(i)+".grad", dt, graph.Dims(s...)))
		slots = append(slots, graph.AdamWSlot{Param: p, M: g.Input(pname(i)+".m", dt, graph.Dims(s...)),
			V: g.Input(pname(i)+".v", dt, graph.Dims(s...)), Decay: decay[i]})
	}
	step, lr := g.Input("step", graph.Float32, graph.Dims(1)), g.Input("lr", graph.Float32, graph.Dims(1))
	ups, norm := buildAdamW(t, g, slots, grads, step, lr, cfg, fused)
	g.Output("norm", g.Reshape(norm, 1))
	for i, u := range ups {
		g.Output(pname(i)+".new", u.Param)
		g.Output(pname(i)+".m.new", u.M)
		g.Output(pname(i)+".v.new", u.V)
	}
	path := filepath.Join(t.TempDir(), "adamw.onnx")
	if err := g.Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func buildAdamW(t *testing.T, g *graph.Graph, slots []graph.AdamWSlot, grads []*graph.Value, step, lr *graph.Value,
	cfg graph.AdamWConfig, fused bool) ([]graph.AdamWUpdate, *graph.Value) {
	t.Helper()
	if fused {
		for i := range slots {
			slots[i].Grad = grads[i]
		}
		ups, norm, err := graph.ClipAdamW(g, slots, step, lr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return ups, norm
	}
	clipped, norm, err := graph.ClipByGlobalNorm(g, grads, cfg.MaxGradNorm)
	if err != nil {
		t.Fatal(err)
	}
	for i := range slots {
		slots[i].Grad = clipped[i]
	}
	ups, err := graph.AdamW(g, slots, step, lr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ups, norm
}

func pname(i int) string { return string(rune('a'+i)) + ".weight" }

func TestAdamWMatchesGo(t *testing.T) {
	cases := []struct {
		name  string
		dt    graph.DType
		tol   float64 // relative to max(|want|, floor)
		floor float64
		cfg   graph.AdamWConfig
	}{
		{"float64-clipped", graph.Float64, 1e-6, 1e-3, graph.AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, MaxGradNorm: 0.5}},
		{"float64-unclipped", graph.Float64, 1e-6, 1e-3, graph.AdamWConfig{Beta1: 0.8, Beta2: 0.95, Eps: 1e-6, WeightDecay: 0.01}},
		// float32 graph against the float64 reference: float32 rounding over
		// 20 steps, so 1e-5 of max(|w|, 1) (observed ≤ 2e-6 absolute).
		{"float32", graph.Float32, 1e-5, 1, graph.DefaultAdamW()},
	}
	for _, tc := range cases {
		for _, fused := range []bool{false, true} {
			name := tc.name + "/ClipByGlobalNorm+AdamW"
			if fused {
				name = tc.name + "/ClipAdamW"
			}
			t.Run(name, func(t *testing.T) { runAdamW(t, tc.dt, tc.tol, tc.floor, tc.cfg, fused) })
		}
	}
}

func runAdamW(t *testing.T, dt graph.DType, tol, floor float64, cfg graph.AdamWConfig, fused bool) {
	ctx := context.Background()
	shapes := [][]int64{{3, 4}, {4}, {5}, {2}, {3}}
	decay := []bool{true, false, false, true, false}
	path := adamWGraph(t, dt, shapes, decay, cfg, fused)
	rng := rand.New(rand.NewPCG(1, 2))
	const lr = 0.05
	ref := refAdamW{cfg: cfg, lr: float64(float32(lr))}
	var params, ms, vs [][]float64
	for _, s := range shapes {
		n := int(s[0])
		if len(s) > 1 {
			n *= int(s[1])
		}
		p := make([]float64, n)
		for j := range p {
			p[j] = rng.NormFloat64()
		}
		params, ms, vs = append(params, p), append(ms, make([]float64, n)), append(vs, make([]float64, n))
	}
	feeds := map[string]*graph.Tensor{}
	for i, s := range shapes {
		feeds[pname(i)] = fromF64(dt, s, append([]float64(nil), params[i]...))
		feeds[pname(i)+".m"] = fromF64(dt, s, make([]float64, len(params[i])))
		feeds[pname(i)+".v"] = fromF64(dt, s, make([]float64, len(params[i])))
	}
	var names, outs []string
	for n := range feeds {
		names = append(names, n)
	}
	for i := range shapes {
		names = append(names, pname(i)+".grad")
		outs = append(outs, pname(i)+".new", pname(i)+".m.new", pname(i)+".v.new")
	}
	names = append(names, "step", "lr")
	outs = append(outs, "norm")
	s, err := graphtest.Open(ctx, path, names, outs)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for step := 1; step <= 20; step++ {
		grads := make([][]float64, len(shapes))
		for i, s := range shapes {
			grads[i] = make([]float64, len(params[i]))
			for j := range grads[i] {
				grads[i][j] = rng.NormFloat64() * 0.7
			}
			grads[i] = toF64(fromF64(dt, s, grads[i])) // what the graph sees
			feeds[pname(i)+".grad"] = fromF64(dt, s, grads[i])
		}
		feeds["step"] = fromF64(graph.Float32, []int64{1}, []float64{float64(step)})
		feeds["lr"] = fromF64(graph.Float32, []int64{1}, []float64{lr})
		res, err := s.Run(ctx, feeds)
		if err != nil {
			t.Fatal(err)
		}
		norm := ref.step(step, params, grads, ms, vs, decay)
		assertClose(t, "grad norm", []float64{norm}, toF64(res["norm"]), tol, floor)
		for i := range shapes {
			assertClose(t, pname(i), params[i], toF64(res[pname(i)+".new"]), tol, floor)
			assertClose(t, pname(i)+".m", ms[i], toF64(res[pname(i)+".m.new"]), tol, floor)
			assertClose(t, pname(i)+".v", vs[i], toF64(res[pname(i)+".v.new"]), tol, floor)
			feeds[pname(i)] = res[pname(i)+".new"]
			feeds[pname(i)+".m"] = res[pname(i)+".m.new"]
			feeds[pname(i)+".v"] = res[pname(i)+".v.new"]
		}
	}
}

func assertClose(t *testing.T, what string, want, got []float64, rel, floor float64) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(want[i] - got[i]); d > rel*math.Max(math.Abs(want[i]), floor) {
			t.Fatalf("%s[%d]: got %.12g, want %.12g (rel diff %.3g)", what, i, got[i], want[i], d/math.Abs(want[i]))
		}
	}
}

func TestAdamWBadInput(t *testing.T) {
	g := graph.New("bad")
	p := g.Input("p", graph.Float32, graph.Dims(2, 3))
	wrong := g.Input("m", graph.Float32, graph.Dims(3, 2))
	step := g.Input("step", graph.Float32, graph.Dims(1))
	lr := g.Input("lr", graph.Float32, graph.Dims(2))
	good := graph.AdamWSlot{Param: p, Grad: p, M: p, V: p}
	cases := []struct {
		name  string
		slots []graph.AdamWSlot
		lr    *graph.Value
		cfg   graph.AdamWConfig
		want  error
	}{
		{"moment-shape", []graph.AdamWSlot{{Param: p, Grad: p, M: wrong, V: p}}, step, graph.DefaultAdamW(), graph.ErrShape},
		{"lr-not-scalar", []graph.AdamWSlot{good}, lr, graph.DefaultAdamW(), graph.ErrInvalidArg},
		{"beta-1", []graph.AdamWSlot{good}, step, graph.AdamWConfig{Beta1: 1, Beta2: 0.9, Eps: 1e-8}, graph.ErrInvalidArg},
		{"eps-0", []graph.AdamWSlot{good}, step, graph.AdamWConfig{Beta1: 0.9, Beta2: 0.9}, graph.ErrInvalidArg},
		{"nil-grad", []graph.AdamWSlot{{Param: p, M: p, V: p}}, step, graph.DefaultAdamW(), graph.ErrNilValue},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := graph.AdamW(g, tc.slots, step, tc.lr, tc.cfg); !errors.Is(err, tc.want) {
				t.Fatalf("AdamW: got %v, want %v", err, tc.want)
			}
			if _, _, err := graph.ClipAdamW(g, tc.slots, step, tc.lr, tc.cfg); !errors.Is(err, tc.want) {
				t.Fatalf("ClipAdamW: got %v, want %v", err, tc.want)
			}
		})
	}
	if _, _, err := graph.ClipByGlobalNorm(g, []*graph.Value{p}, -1); !errors.Is(err, graph.ErrInvalidArg) {
		t.Fatalf("negative max norm: %v", err)
	}
	if _, _, err := graph.ClipAdamW(g, nil, step, step, graph.DefaultAdamW()); !errors.Is(err, graph.ErrInvalidArg) {
		t.Fatalf("ClipAdamW without slots: %v", err)
	}
}

// TestClipAdamWPacksVectors checks that vector parameters of one decay
// setting share one concatenated update (values: TestAdamWMatchesGo).
func TestClipAdamWPacksVectors(t *testing.T) {
	g := graph.New("pack")
	var slots []graph.AdamWSlot
	for i, s := range [][]int64{{3, 4}, {4}, {5}, {2}} {
		in := func(suffix string) *graph.Value { return g.Input(pname(i)+suffix, graph.Float32, graph.Dims(s...)) }
		slots = append(slots, graph.AdamWSlot{Param: in(""), Grad: in(".grad"), M: in(".m"), V: in(".v"), Decay: len(s) > 1})
	}
	before := len(g.Nodes())
	ups, _, err := graph.ClipAdamW(g, slots, g.Input("step", graph.Float32, graph.Dims(1)), g.Input("lr", graph.Float32, graph.Dims(1)), graph.DefaultAdamW())
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, n := range g.Nodes()[before:] {
		ops[n.OpType()]++
	}
	// one matrix and one packed vector slot: a Sqrt each, one for the norm
	// and one for √(1−β2ᵗ); three Splits give the vectors back
	if ops["Sqrt"] != 4 || ops["Split"] != 3 || ops["Concat"] != 4 {
		t.Fatalf("ops %v", ops)
	}
	for i, u := range ups {
		if !u.Param.Shape().Equal(slots[i].Param.Shape()) || !u.V.Shape().Equal(slots[i].Param.Shape()) {
			t.Fatalf("update %d has shape %v, want %v", i, u.Param.Shape(), slots[i].Param.Shape())
		}
	}
}
