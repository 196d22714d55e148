package models

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/medgr2/medgr2/graph/onnxpb"
)

const (
	tFloat   = int32(onnxpb.TensorProto_FLOAT)
	tFloat16 = int32(onnxpb.TensorProto_FLOAT16)
	tBool    = int32(onnxpb.TensorProto_BOOL)
	tInt64   = int32(onnxpb.TensorProto_INT64)
)

// precision is where a float value lives in a graph being converted.
type precision byte

const (
	inHalf   precision = 'h' // float16
	inSingle precision = 'f' // float32
	constant precision = 'c' // a float32 Constant node: copied to float16 where a float16 op reads it
)

// elemTypes infers every value's element type from the graph's inputs,
// initializers and each node's op (ONNX nodes are topologically sorted).
func elemTypes(gp *onnxpb.GraphProto) map[string]int32 {
	types := map[string]int32{}
	for _, vi := range gp.GetInput() {
		types[vi.GetName()] = vi.GetType().GetTensorType().GetElemType()
	}
	for _, t := range gp.GetInitializer() {
		types[t.GetName()] = t.GetDataType()
	}
	for _, n := range gp.GetNode() {
		var dt int32
		in := func(i int) int32 {
			if i < len(n.Input) {
				return types[n.Input[i]]
			}
			return 0
		}
		switch n.GetOpType() {
		case "Cast":
			dt = int32(attrInt(n, "to", 0))
		case "Constant", "ConstantOfShape":
			dt = tFloat
			for _, a := range n.GetAttribute() {
				if a.GetT() != nil {
					dt = a.GetT().GetDataType()
				}
			}
		case "Shape", "Size", "ArgMax", "ArgMin", "NonZero":
			dt = tInt64
		case "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Equal", "And", "Or", "Not", "Xor", "IsNaN", "IsInf":
			dt = tBool
		case "Where":
			dt = in(1)
		default:
			dt = in(0)
		}
		for _, o := range n.GetOutput() {
			types[o] = dt
		}
	}
	return types
}

// toFloat16 converts a float32 graph to float16 in place: float32
// initializers and float inputs and outputs become float16 (inputs named in
// keep stay float32 and are cast inside); ops in fp16Blocked, and the
// elementwise ops that only feed them, run in float32, as do ops whose
// float inputs are all float32 or constants (the RoPE tables computed
// from position_ids); Casts join the two.
func toFloat16(gp *onnxpb.GraphProto, keep map[string]bool) error {
	types := elemTypes(gp)
	state := map[string]precision{}
	for _, vi := range gp.GetInput() {
		if types[vi.GetName()] != tFloat {
			continue
		}
		if keep[vi.GetName()] {
			state[vi.GetName()] = inSingle
			continue
		}
		vi.GetType().GetTensorType().ElemType = proto.Int32(tFloat16)
		state[vi.GetName()] = inHalf
	}
	for i, t := range gp.GetInitializer() {
		if t.GetDataType() == tFloat {
			gp.Initializer[i] = halfTensor(t, t.GetName())
			state[t.GetName()] = inHalf
		}
	}
	single := wantSingle(gp, types)
	c := &converter{types: types, state: state, casts: map[string]string{}}
	for _, n := range gp.GetNode() {
		c.node(n, single[n])
	}
	if err := c.outputs(gp); err != nil {
		return err
	}
	gp.Node = c.nodes
	gp.ValueInfo = nil
	return nil
}

// wantSingle marks the nodes that run in float32: the blocked ops, and
// (walking back) elementwise ops all of whose consumers run in float32.
func wantSingle(gp *onnxpb.GraphProto, types map[string]int32) map[*onnxpb.NodeProto]bool {
	consumers := map[string][]*onnxpb.NodeProto{}
	for _, n := range gp.GetNode() {
		for _, in := range n.GetInput() {
			consumers[in] = append(consumers[in], n)
		}
	}
	outputs := map[string]bool{}
	for _, o := range gp.GetOutput() {
		outputs[o.GetName()] = true
	}
	single := map[*onnxpb.NodeProto]bool{}
	nodes := gp.GetNode()
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		if fp16Blocked[n.GetOpType()] {
			single[n] = true
			continue
		}
		if !fp16Elementwise[n.GetOpType()] {
			continue
		}
		all, any := true, false
		for _, o := range n.GetOutput() {
			if outputs[o] {
				all = false
			}
			for _, u := range consumers[o] {
				any = true
				all = all && single[u]
			}
		}
		single[n] = all && any
	}
	return single
}

// converter rewrites the nodes of a graph being converted to float16.
type converter struct {
	types map[string]int32
	state map[string]precision
	casts map[string]string // "name/h" or "name/f" → the cast (or copied constant) value
	nodes []*onnxpb.NodeProto
	seq   int
}

// node appends n, reading each float input in the precision n runs in.
func (c *converter) node(n *onnxpb.NodeProto, single bool) {
	run := inSingle
	if n.GetOpType() == "Constant" {
		c.nodes = append(c.nodes, n)
		if c.types[n.Output[0]] == tFloat {
			c.state[n.Output[0]] = constant
		}
		return
	}
	if n.GetOpType() == "Cast" {
		c.nodes = append(c.nodes, n)
		if c.types[n.Output[0]] == tFloat {
			c.state[n.Output[0]] = inSingle
		}
		return
	}
	if !single {
		for _, in := range n.GetInput() {
			if c.state[in] == inHalf {
				run = inHalf
			}
		}
	}
	for i, in := range n.GetInput() {
		if s, ok := c.state[in]; ok && s != run && (s != constant || run == inHalf) {
			n.Input[i] = c.as(in, run)
		}
	}
	for _, o := range n.GetOutput() {
		if c.types[o] == tFloat {
			c.state[o] = run
		}
	}
	c.nodes = append(c.nodes, n)
}

// as returns a value holding name in precision p, adding a Cast (or a
// float16 copy of a constant) the first time.
func (c *converter) as(name string, p precision) string {
	key := fmt.Sprintf("%s/%c", name, p)
	if v, ok := c.casts[key]; ok {
		return v
	}
	c.seq++
	out := fmt.Sprintf("%s_fp16cast%d", name, c.seq)
	src := c.state[name]
	if src == constant && p == inHalf {
		c.nodes = append(c.nodes, constantHalf(c.constantOf(name), out))
	} else {
		to := tFloat
		if p == inHalf {
			to = tFloat16
		}
		c.nodes = append(c.nodes, &onnxpb.NodeProto{OpType: proto.String("Cast"), Name: proto.String(out),
			Input: []string{name}, Output: []string{out}, Attribute: []*onnxpb.AttributeProto{intAttr("to", int64(to))}})
	}
	c.casts[key] = out
	return out
}

// constantOf returns the Constant node that produces name.
func (c *converter) constantOf(name string) *onnxpb.NodeProto {
	for _, n := range c.nodes {
		if n.GetOpType() == "Constant" && len(n.Output) == 1 && n.Output[0] == name {
			return n
		}
	}
	return nil
}

// constantHalf returns a Constant node producing out, a float16 copy of
// n's value.
func constantHalf(n *onnxpb.NodeProto, out string) *onnxpb.NodeProto {
	var t *onnxpb.TensorProto
	for _, a := range n.GetAttribute() {
		if a.GetT() != nil {
			t = a.GetT()
		}
	}
	return &onnxpb.NodeProto{OpType: proto.String("Constant"), Name: proto.String(out), Output: []string{out},
		Attribute: []*onnxpb.AttributeProto{{Name: proto.String("value"), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: halfTensor(t, out)}}}
}

// outputs declares every float output float16, casting a value computed
// in float32.
func (c *converter) outputs(gp *onnxpb.GraphProto) error {
	for _, o := range gp.GetOutput() {
		tt := o.GetType().GetTensorType()
		if tt == nil || tt.GetElemType() != tFloat {
			continue
		}
		name := o.GetName()
		switch c.state[name] {
		case inHalf:
		case inSingle, constant:
			inner := name + "_fp32"
			for _, n := range c.nodes {
				for i := range n.Input {
					if n.Input[i] == name {
						n.Input[i] = inner
					}
				}
				for i := range n.Output {
					if n.Output[i] == name {
						n.Output[i] = inner
					}
				}
			}
			c.nodes = append(c.nodes, &onnxpb.NodeProto{OpType: proto.String("Cast"), Name: proto.String(name + "_cast"),
				Input: []string{inner}, Output: []string{name}, Attribute: []*onnxpb.AttributeProto{intAttr("to", int64(tFloat16))}})
		default:
			return fmt.Errorf("%w: fp16: output %q has no producer", ErrBadONNX, name)
		}
		tt.ElemType = proto.Int32(tFloat16)
	}
	return nil
}
