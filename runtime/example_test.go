package runtime_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/medgr2/medgr2/graph/onnxpb"
	"github.com/medgr2/medgr2/runtime"
	"google.golang.org/protobuf/proto"
)

// addModelFile writes a one-node model Z = X + Y with X, Y, Z float32
// [batch, 2] and returns its path.
func addModelFile(dir string) string {
	v := func(name string) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{
			Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
				ElemType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
				Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{
					{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}},
					{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 2}},
				}},
			}}}}
	}
	m := &onnxpb.ModelProto{
		IrVersion:   proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: proto.Int64(17)}},
		Graph: &onnxpb.GraphProto{
			Name:   proto.String("add"),
			Node:   []*onnxpb.NodeProto{{OpType: proto.String("Add"), Input: []string{"X", "Y"}, Output: []string{"Z"}}},
			Input:  []*onnxpb.ValueInfoProto{v("X"), v("Y")},
			Output: []*onnxpb.ValueInfoProto{v("Z")},
		},
	}
	b, err := proto.Marshal(m)
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(dir, "add.onnx")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		log.Fatal(err)
	}
	return path
}

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	env, err := runtime.Open(ctx, runtime.Options{}) // finds libonnxruntime
	if err != nil {
		log.Fatal(err) // says to run `make ort` when the library is missing
	}
	defer env.Close()

	dev, _ := runtime.ParseDevice("cpu")
	sess, err := env.NewSession(ctx, addModelFile(dir), runtime.SessionOptions{
		Device: dev,
		Expect: []runtime.IOInfo{{Name: "X", DType: runtime.Float32, Shape: []int64{-1, 2}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close()
	fmt.Println(sess.Inputs()[0])

	x, _ := runtime.NewTensor([]int64{2, 2}, []float32{1, 2, 3, 4}) // no copy
	defer x.Close()
	outs, err := sess.Run(ctx, []runtime.NamedTensor{{Name: "X", Tensor: x}, {Name: "Y", Tensor: x}}, []string{"Z"})
	if err != nil {
		log.Fatal(err)
	}
	defer runtime.CloseAll(outs...)
	z, _ := runtime.Data[float32](outs[0])
	fmt.Println(outs[0].Shape(), z)
	// Output:
	// X: float32[-1 2]
	// [2 2] [2 4 6 8]
}
