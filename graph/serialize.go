package graph

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/medgr2/medgr2/graph/onnxpb"
	"github.com/medgr2/medgr2/internal/atomicfile"
)

// Opset and IR version of every model the builder writes: the default
// ai.onnx domain only.
const (
	Opset     = 17
	IRVersion = 8
)

// Model converts the graph to an ONNX ModelProto (IR 8, opset 17). It fails
// if any builder call failed or the graph has no outputs.
// Initializers declared with ExternalInitializer are written as external
// data references; the others carry their bytes in raw_data.
func (g *Graph) Model() (*onnxpb.ModelProto, error) {
	if g.err != nil {
		return nil, g.err
	}
	if len(g.outputs) == 0 {
		return nil, fmt.Errorf("%w: graph %q has no outputs", ErrInvalidArg, g.name)
	}
	gp := &onnxpb.GraphProto{Name: proto.String(g.name)}
	for _, v := range g.inputs {
		gp.Input = append(gp.Input, valueInfo(v))
	}
	for _, v := range g.outputs {
		gp.Output = append(gp.Output, valueInfo(v))
	}
	for _, v := range g.inits {
		gp.Initializer = append(gp.Initializer, initializerProto(v))
	}
	for _, n := range g.nodes {
		np, err := nodeProto(n)
		if err != nil {
			return nil, err
		}
		gp.Node = append(gp.Node, np)
	}
	return &onnxpb.ModelProto{
		IrVersion:       proto.Int64(IRVersion),
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(Opset)}},
		ProducerName:    proto.String("medgr2"),
		ProducerVersion: proto.String("0.1"),
		Graph:           gp,
	}, nil
}

// Marshal returns the serialised ONNX model.
func (g *Graph) Marshal() ([]byte, error) {
	m, err := g.Model()
	if err != nil {
		return nil, err
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("graph: marshal %q: %w", g.name, err)
	}
	return b, nil
}

// Save writes the ONNX model to path (atomically). External initializers
// must already be in their weights file beside path.
func (g *Graph) Save(path string) error {
	b, err := g.Marshal()
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b)
}

func valueInfo(v *Value) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range v.shape {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		switch {
		case d.Fixed():
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.Size}
		case d.Param != "":
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.Param}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	if v.anyRank {
		shape = nil // no shape: any rank
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(v.name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(v.dtype)),
			Shape:    shape,
		}}},
	}
}

func initializerProto(v *Value) *onnxpb.TensorProto {
	if v.external == nil {
		return tensorProto(v.name, v.data)
	}
	ref := v.external
	return &onnxpb.TensorProto{
		Name:         proto.String(v.name),
		DataType:     proto.Int32(int32(v.dtype)),
		Dims:         v.shape.Sizes(),
		DataLocation: onnxpb.TensorProto_EXTERNAL.Enum(),
		ExternalData: []*onnxpb.StringStringEntryProto{
			{Key: proto.String("location"), Value: proto.String(ref.Location)},
			{Key: proto.String("offset"), Value: proto.String(fmt.Sprint(ref.Offset))},
			{Key: proto.String("length"), Value: proto.String(fmt.Sprint(ref.Length))},
		},
	}
}

func tensorProto(name string, t *Tensor) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{
		Name:     proto.String(name),
		DataType: proto.Int32(int32(t.DType)),
		Dims:     append([]int64{}, t.Dims...),
		RawData:  t.Bytes(),
	}
}

func nodeProto(n *Node) (*onnxpb.NodeProto, error) {
	np := &onnxpb.NodeProto{OpType: proto.String(n.op), Name: proto.String(n.name)}
	for _, in := range n.inputs {
		name := ""
		if in != nil {
			name = in.name
		}
		np.Input = append(np.Input, name)
	}
	for len(np.Input) > 0 && np.Input[len(np.Input)-1] == "" {
		np.Input = np.Input[:len(np.Input)-1]
	}
	for _, o := range n.outputs {
		np.Output = append(np.Output, o.name)
	}
	for _, a := range n.attrs {
		ap, err := attrProto(a)
		if err != nil {
			return nil, &OpError{Op: n.op, Node: n.name, Err: err}
		}
		np.Attribute = append(np.Attribute, ap)
	}
	return np, nil
}

func attrProto(a Attr) (*onnxpb.AttributeProto, error) {
	ap := &onnxpb.AttributeProto{Name: proto.String(a.Name)}
	switch v := a.Value.(type) {
	case int64:
		ap.Type = onnxpb.AttributeProto_INT.Enum()
		ap.I = proto.Int64(v)
	case float32:
		ap.Type = onnxpb.AttributeProto_FLOAT.Enum()
		ap.F = proto.Float32(v)
	case string:
		ap.Type = onnxpb.AttributeProto_STRING.Enum()
		ap.S = []byte(v)
	case []int64:
		ap.Type = onnxpb.AttributeProto_INTS.Enum()
		ap.Ints = v
	case []float32:
		ap.Type = onnxpb.AttributeProto_FLOATS.Enum()
		ap.Floats = v
	case *Tensor:
		ap.Type = onnxpb.AttributeProto_TENSOR.Enum()
		ap.T = tensorProto("", v)
	default:
		return nil, fmt.Errorf("%w: attribute %q of type %T", ErrUnsupported, a.Name, a.Value)
	}
	return ap, nil
}
