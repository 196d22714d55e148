package runtime

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/medgr2/medgr2/graph/onnxpb"
	"google.golang.org/protobuf/proto"
)

// openEnv opens ORT through the normal search (MEDGR2_ORT_LIB, then
// third_party/ort above the package folder) and fails the test loudly when
// the library is missing.
func openEnv(tb testing.TB) *Env {
	tb.Helper()
	env, err := Open(context.Background(), Options{})
	if err != nil {
		tb.Fatalf("ONNX Runtime is required for this test: %v", err)
	}
	tb.Cleanup(func() { _ = env.Close() })
	return env
}

const (
	f32  = onnxpb.TensorProto_FLOAT
	f16  = onnxpb.TensorProto_FLOAT16
	i64  = onnxpb.TensorProto_INT64
	bln  = onnxpb.TensorProto_BOOL
	none = onnxpb.TensorProto_UNDEFINED
)

// vi declares a tensor value; dims are int (fixed) or string (symbolic); no
// dims declares a scalar.
func vi(name string, et onnxpb.TensorProto_DataType, dims ...any) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{}}
	for _, d := range dims {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		switch v := d.(type) {
		case int:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(v)}
		case string:
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: v}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(et)), Shape: shape,
		}}},
	}
}

func node(op string, ins, outs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: proto.String(op), Input: ins, Output: outs, Attribute: attrs}
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), I: proto.Int64(v),
		Type: onnxpb.AttributeProto_INT.Enum()}
}

func floatInit(name string, dims []int64, vals []float32) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: proto.String(name), Dims: dims,
		DataType: proto.Int32(int32(f32)), FloatData: vals}
}

// buildModel serializes a one-graph opset-17 model.
func buildModel(tb testing.TB, nodes []*onnxpb.NodeProto, ins, outs []*onnxpb.ValueInfoProto, inits ...*onnxpb.TensorProto) []byte {
	tb.Helper()
	m := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}},
		Graph: &onnxpb.GraphProto{Name: proto.String("test"), Node: nodes, Input: ins,
			Output: outs, Initializer: inits},
	}
	b, err := proto.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func writeModel(tb testing.TB, name string, b []byte) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// addModel: Z[batch,3] = X[batch,3] + Y[batch,3].
func addModel(tb testing.TB) []byte {
	return buildModel(tb, []*onnxpb.NodeProto{node("Add", []string{"X", "Y"}, []string{"Z"})},
		[]*onnxpb.ValueInfoProto{vi("X", f32, "batch", 3), vi("Y", f32, "batch", 3)},
		[]*onnxpb.ValueInfoProto{vi("Z", f32, "batch", 3)})
}

// matmulModel: C[2,4] = A[2,3] × W[3,4], W an initializer (0..11).
func matmulModel(tb testing.TB) []byte {
	w := make([]float32, 12)
	for i := range w {
		w[i] = float32(i)
	}
	return buildModel(tb, []*onnxpb.NodeProto{node("MatMul", []string{"A", "W"}, []string{"C"})},
		[]*onnxpb.ValueInfoProto{vi("A", f32, 2, 3)},
		[]*onnxpb.ValueInfoProto{vi("C", f32, 2, 4)},
		floatInit("W", []int64{3, 4}, w))
}

// cacheModel mimics one decoder layer's cache: present = Concat(past, new)
// on the sequence axis, plus total = ReduceSum(present) as a scalar and
// shape = Shape(present) as int64.
func cacheModel(tb testing.TB) []byte {
	return buildModel(tb, []*onnxpb.NodeProto{
		node("Concat", []string{"past_key_values.0.key", "new"}, []string{"present.0.key"}, intAttr("axis", 2)),
		node("ReduceSum", []string{"present.0.key"}, []string{"total"}, intAttr("keepdims", 0)),
		node("Shape", []string{"present.0.key"}, []string{"shape"}),
	},
		[]*onnxpb.ValueInfoProto{vi("past_key_values.0.key", f32, "batch", 2, "past", 4), vi("new", f32, "batch", 2, 1, 4)},
		[]*onnxpb.ValueInfoProto{vi("present.0.key", f32, "batch", 2, "total_seq", 4), vi("total", f32), vi("shape", i64, 4)})
}

// castModel: F = Cast(H: float16 → float32), H2 = Identity(H), NB = Not(B).
func castModel(tb testing.TB) []byte {
	return buildModel(tb, []*onnxpb.NodeProto{
		node("Cast", []string{"H"}, []string{"F"}, intAttr("to", int64(f32))),
		node("Identity", []string{"H"}, []string{"H2"}),
		node("Not", []string{"B"}, []string{"NB"}),
	},
		[]*onnxpb.ValueInfoProto{vi("H", f16, "n"), vi("B", bln, "n")},
		[]*onnxpb.ValueInfoProto{vi("F", f32, "n"), vi("H2", f16, "n"), vi("NB", bln, "n")})
}

// chainModel: Y = X·W·W·…·W (depth MatMuls of [n,n]); slow enough to see
// intra-op threads and cancellation.
func chainModel(tb testing.TB, n, depth int) []byte {
	w := make([]float32, n*n)
	for i := 0; i < n; i++ {
		w[i*n+i] = 1 // identity keeps values finite
	}
	var nodes []*onnxpb.NodeProto
	prev := "X"
	for i := 0; i < depth; i++ {
		out := "h" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if i == depth-1 {
			out = "Y"
		}
		nodes = append(nodes, node("MatMul", []string{prev, "W"}, []string{out}))
		prev = out
	}
	return buildModel(tb, nodes, []*onnxpb.ValueInfoProto{vi("X", f32, n, n)},
		[]*onnxpb.ValueInfoProto{vi("Y", f32, n, n)}, floatInit("W", []int64{int64(n), int64(n)}, w))
}

func mustTensor[T Element](tb testing.TB, shape []int64, data []T) *Tensor {
	tb.Helper()
	t, err := NewTensor(shape, data)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = t.Close() })
	return t
}

func mustData[T Element](tb testing.TB, t *Tensor) []T {
	tb.Helper()
	d, err := Data[T](t)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}
