package graph_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/medgr2/medgr2/graph"
)

func TestShapeInference(t *testing.T) {
	b, s := graph.Sym("b"), graph.Sym("s")
	tests := []struct {
		name  string
		build func(g *graph.Graph, x *graph.Value) *graph.Value
		want  string
	}{
		{"broadcast", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Add(x, g.ConstFloat32s(1, 2, 3, 4)) }, "[b, s, 4]"},
		{"reshape-0", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Reshape(x, 0, 0, 2, 2) }, "[b, s, 2, 2]"},
		{"reshape-sym-infer", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Reshape(g.Reshape(x, 0, 0, 2, 2), 0, -1, 4)
		}, "[b, s, 4]"},
		{"reshape-unknown", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Reshape(x, -1, 8) }, "[?, 8]"},
		{"matmul-batch", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.MatMul(x, g.ConstFloat32s(1, 2, 3, 4))
		}, "[b, s]"},
		{"reduce-keep", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.ReduceMean(x, []int64{-1}, true) }, "[b, s, 1]"},
		{"concat-sym", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Concat(1, x, x) }, "[b, ?, 4]"},
		{"slice-last", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Slice(x, []int64{-1}, []int64{graph.SliceEnd}, []int64{1}, nil)
		}, "[b, 1, 4]"},
		{"gather", func(g *graph.Graph, x *graph.Value) *graph.Value { return g.Gather(x, g.ConstInt64s(0, 1, 2), 2) }, "[b, s, 3]"},
		{"unsqueeze-transpose", func(g *graph.Graph, x *graph.Value) *graph.Value {
			return g.Transpose(g.Unsqueeze(x, 1), 0, 2, 1, 3)
		}, "[b, s, 1, 4]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := graph.New(tc.name)
			x := g.Input("x", graph.Float32, graph.Shape{b, s, graph.D(4)})
			y := tc.build(g, x)
			if err := g.Err(); err != nil {
				t.Fatal(err)
			}
			if got := y.Shape().String(); got != tc.want {
				t.Fatalf("shape %s, want %s", got, tc.want)
			}
		})
	}
}

func TestBuilderRejectsBadInput(t *testing.T) {
	tests := []struct {
		name  string
		build func(g *graph.Graph, x *graph.Value)
		want  error
	}{
		{"broadcast-mismatch", func(g *graph.Graph, x *graph.Value) { g.Add(x, g.ConstFloat32s(1, 2, 3)) }, graph.ErrShape},
		{"matmul-inner", func(g *graph.Graph, x *graph.Value) { g.MatMul(x, x) }, graph.ErrShape},
		{"dtype-mix", func(g *graph.Graph, x *graph.Value) { g.Add(x, g.ConstInt64s(1)) }, graph.ErrDType},
		{"nil-value", func(g *graph.Graph, x *graph.Value) { g.Add(x, nil) }, graph.ErrNilValue},
		{"foreign-value", func(g *graph.Graph, x *graph.Value) {
			other := graph.New("other").Input("z", graph.Float32, graph.Dims(2, 4))
			g.Add(x, other)
		}, graph.ErrForeignValue},
		{"duplicate-input", func(g *graph.Graph, x *graph.Value) { g.Input("x", graph.Float32, graph.Dims(1)) }, graph.ErrDuplicateName},
		{"bad-axis", func(g *graph.Graph, x *graph.Value) { g.Softmax(x, 2) }, graph.ErrInvalidArg},
		{"bad-perm", func(g *graph.Graph, x *graph.Value) { g.Transpose(x, 0, 0) }, graph.ErrInvalidArg},
		{"reshape-count", func(g *graph.Graph, x *graph.Value) { g.Reshape(x, 3, 3) }, graph.ErrShape},
		{"reshape-two-infer", func(g *graph.Graph, x *graph.Value) { g.Reshape(x, -1, -1) }, graph.ErrInvalidArg},
		{"split-sizes", func(g *graph.Graph, x *graph.Value) { g.Split(x, 1, 1, 1) }, graph.ErrShape},
		{"squeeze-non-1", func(g *graph.Graph, x *graph.Value) { g.Squeeze(x, 0) }, graph.ErrShape},
		{"sqrt-int", func(g *graph.Graph, x *graph.Value) { g.Sqrt(g.ConstInt64s(4)) }, graph.ErrDType},
		{"where-cond", func(g *graph.Graph, x *graph.Value) { g.Where(x, x, x) }, graph.ErrDType},
		{"gather-float-idx", func(g *graph.Graph, x *graph.Value) { g.Gather(x, x, 0) }, graph.ErrDType},
		{"initializer-nil", func(g *graph.Graph, x *graph.Value) { g.Initializer("w", nil) }, graph.ErrInvalidArg},
		{"external-bad-ref", func(g *graph.Graph, x *graph.Value) {
			g.ExternalInitializer("w", graph.Float32, graph.Dims(2), graph.ExternalRef{Location: "w.bin", Length: 4})
		}, graph.ErrInvalidArg},
		{"output-refine", func(g *graph.Graph, x *graph.Value) { g.Output("y", g.Neg(x), graph.D(3), graph.D(4)) }, graph.ErrShape},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := graph.New(tc.name)
			x := g.Input("x", graph.Float32, graph.Dims(2, 4))
			tc.build(g, x)
			err := g.Err()
			if !errors.Is(err, tc.want) {
				t.Fatalf("Err() = %v, want %v", err, tc.want)
			}
			var oe *graph.OpError
			if !errors.As(err, &oe) {
				t.Fatalf("%v is not an *OpError", err)
			}
			if _, merr := g.Model(); !errors.Is(merr, tc.want) {
				t.Fatalf("Model() = %v, want the build error", merr)
			}
		})
	}
}

func TestWeightsRoundTripAndErrors(t *testing.T) {
	dir := t.TempDir()
	a, _ := graph.NewFloat32([]int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	b, _ := graph.NewInt64([]int64{2}, []int64{-7, 9})
	path := filepath.Join(dir, "w.safetensors")
	layout, err := graph.WriteWeights(path, []graph.NamedTensor{{Name: "a", Tensor: a}, {Name: "b", Tensor: b}})
	if err != nil {
		t.Fatal(err)
	}
	ts, read, err := graph.ReadWeights(path)
	if err != nil {
		t.Fatal(err)
	}
	if ts["a"].F32[5] != 6 || ts["b"].I64[0] != -7 || len(ts) != 2 {
		t.Fatalf("round trip: %+v", ts)
	}
	for _, name := range []string{"a", "b"} {
		r1, _ := layout.Ref(name)
		r2, _ := read.Ref(name)
		if r1 != r2 {
			t.Fatalf("ref %s: written %+v, read %+v", name, r1, r2)
		}
	}
	if len(layout.Header)%8 != 0 {
		t.Fatalf("header length %d is not 8-aligned", len(layout.Header))
	}
	data, _ := os.ReadFile(path)
	bad := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"header-too-long", append([]byte{0xff, 0xff, 0, 0, 0, 0, 0, 0}, data[8:]...)},
		{"truncated-data", data[:len(data)-4]},
		{"not-json", append(append([]byte{}, data[:8]...), []byte("{{{{{{{{")...)},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, _, err := graph.ReadWeights(p); !errors.Is(err, graph.ErrFormat) {
				t.Fatalf("ReadWeights = %v, want ErrFormat", err)
			}
		})
	}
	if _, err := graph.PlanWeights("x", []graph.WeightSpec{{Name: "a", DType: graph.Float32}, {Name: "a", DType: graph.Float32}}); !errors.Is(err, graph.ErrInvalidArg) {
		t.Fatalf("duplicate names: %v", err)
	}
}
