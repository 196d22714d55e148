package models

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/medgr2/medgr2/graph/onnxpb"
	"github.com/medgr2/medgr2/runtime"
)

func randFloats(r *rand.Rand, n int, std float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64() * std)
	}
	return out
}

// TestQuantizeQ4 checks the packing against its Go dequantisation: every
// weight is within half a step of its block's scale, codes cover the
// signed 4-bit range, an all-zero block stays zero, and a K that is not a
// multiple of the block size is padded.
func TestQuantizeQ4(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name    string
		n, k    int
		block   int
		zeroRow bool
	}{
		{"square", 8, 64, 32, false},
		{"K not a multiple of the block", 5, 40, 32, false},
		{"block 16", 3, 48, 16, false},
		{"a zero row", 4, 32, 32, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := randFloats(r, c.n*c.k, 0.5)
			if c.zeroRow {
				clear(w[:c.k])
			}
			q, err := QuantizeQ4(w, c.n, c.k, c.block)
			if err != nil {
				t.Fatal(err)
			}
			nb := (c.k + c.block - 1) / c.block
			if len(q.Packed) != c.n*nb*c.block/2 || len(q.Scales) != c.n*nb {
				t.Fatalf("packed %d bytes, %d scales", len(q.Packed), len(q.Scales))
			}
			got := q.Dequantize()
			for i, v := range w {
				s := q.Scales[(i/c.k)*nb+(i%c.k)/c.block]
				if d := math.Abs(float64(got[i] - v)); d > float64(s)/2+1e-7 {
					t.Fatalf("w[%d] = %v dequantizes to %v (scale %v)", i, v, got[i], s)
				}
			}
			if c.zeroRow {
				for _, v := range got[:c.k] {
					if v != 0 {
						t.Fatalf("zero row dequantizes to %v", v)
					}
				}
			}
		})
	}
	if _, err := QuantizeQ4(make([]float32, 12), 3, 4, 24); err == nil {
		t.Error("block size 24 accepted")
	}
}

// matMulModel writes a one-node ONNX model Y = A·W with W [k, n] an inline
// initializer, as the float32 source of a variant.
func matMulModel(t *testing.T, path string, w []float32, k, n int) {
	t.Helper()
	raw := make([]byte, 4*len(w))
	for i, v := range w {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	vi := func(name string, dims ...int64) *onnxpb.ValueInfoProto {
		shape := &onnxpb.TensorShapeProto{}
		for _, d := range dims {
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(tFloat), Shape: shape}}}}
	}
	mp := &onnxpb.ModelProto{IrVersion: proto.Int64(8), OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}},
		Graph: &onnxpb.GraphProto{Name: proto.String("mm"),
			Node:        []*onnxpb.NodeProto{{OpType: proto.String("MatMul"), Input: []string{"A", "W"}, Output: []string{"Y"}}},
			Initializer: []*onnxpb.TensorProto{{Name: proto.String("W"), Dims: []int64{int64(k), int64(n)}, DataType: proto.Int32(tFloat), RawData: raw}},
			Input:       []*onnxpb.ValueInfoProto{vi("A", 3, int64(k))},
			Output:      []*onnxpb.ValueInfoProto{vi("Y", 3, int64(n))}}}
	data, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMatMulNBitsMatchesDequantized runs the q4 and q4f16 variants of a
// MatMul in ONNX Runtime (com.microsoft MatMulNBits) and compares them
// with A times the Go dequantisation of the same packed weight: equal to
// float32 rounding for q4, to float16 rounding for q4f16.
func TestMatMulNBitsMatchesDequantized(t *testing.T) {
	const k, n = 40, 24 // K is not a multiple of QuantBlockSize
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	w, a := randFloats(r, k*n, 0.3), randFloats(r, 3*k, 1)
	dir := t.TempDir()
	src := filepath.Join(dir, "mm.onnx")
	matMulModel(t, src, w, k, n)
	wt := make([]float32, n*k) // [N, K] as QuantizeQ4 reads it
	for i := range k {
		for j := range n {
			wt[j*k+i] = w[i*n+j]
		}
	}
	q, err := QuantizeQ4(wt, n, k, QuantBlockSize)
	if err != nil {
		t.Fatal(err)
	}
	deq := q.Dequantize()
	want := make([]float32, 3*n)
	for m := range 3 {
		for j := range n {
			var s float64
			for i := range k {
				s += float64(a[m*k+i]) * float64(deq[j*k+i])
			}
			want[m*n+j] = float32(s)
		}
	}
	env, err := runtime.Open(ctx, runtime.Options{})
	if err != nil {
		t.Fatalf("ONNX Runtime is required: %v", err)
	}
	defer env.Close()
	for _, c := range []struct {
		dtype DType
		tol   float64
	}{{DTypeQ4, 1e-5}, {DTypeQ4F16, 2e-2}} {
		t.Run(string(c.dtype), func(t *testing.T) {
			dst := filepath.Join(dir, "mm"+dtypeSuffix[c.dtype]+".onnx")
			if err := writeVariant(src, dst, c.dtype); err != nil {
				t.Fatal(err)
			}
			s, err := env.NewSession(ctx, dst, runtime.SessionOptions{Device: runtime.CPU})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got := make([]float32, 3*n)
			half := c.dtype == DTypeQ4F16
			in, out := newFloatBuf(half, 3*k, 0), newFloatBuf(half, 3*n, 0)
			in.set(0, a)
			at, err := in.tensor([]int64{3, k})
			if err != nil {
				t.Fatal(err)
			}
			yt, err := out.tensor([]int64{3, n})
			if err != nil {
				t.Fatal(err)
			}
			defer runtime.CloseAll(at, yt)
			if err := s.RunInto(ctx, []runtime.NamedTensor{{Name: "A", Tensor: at}}, []runtime.NamedTensor{{Name: "Y", Tensor: yt}}); err != nil {
				t.Fatal(err)
			}
			out.read(got, 0)
			var worst float64
			for i := range got {
				worst = max(worst, math.Abs(float64(got[i]-want[i]))/(1+math.Abs(float64(want[i]))))
			}
			if worst > c.tol {
				t.Fatalf("MatMulNBits differs from the Go dequantisation by %.3g (relative), want ≤ %g", worst, c.tol)
			}
			t.Logf("%s: max relative diff to the Go dequantisation %.3g", c.dtype, worst)
		})
	}
}
