package graph

import (
	"fmt"
	"sort"
)

// ValueKind says where a value comes from.
type ValueKind int

// Kinds of values.
const (
	KindNodeOutput  ValueKind = iota // produced by a node
	KindInput                        // a graph input (fed at run time)
	KindInitializer                  // a named weight stored with (or beside) the graph
)

// Value is one tensor in the graph: a graph input, an initializer or a node
// output. Its dtype and static shape are fixed when it is created.
type Value struct {
	g        *Graph
	id       int
	name     string
	dtype    DType
	shape    Shape
	kind     ValueKind
	producer *Node
	data     *Tensor      // initializer data, nil for external or non-initializers
	external *ExternalRef // where the initializer's bytes live, if outside the graph
	anyRank  bool         // an input declared without a shape (InputAnyRank)
}

// ID returns the value's index in creation order (unique within its graph).
func (v *Value) ID() int { return v.id }

// Name returns the ONNX name of the value.
func (v *Value) Name() string { return v.name }

// DType returns the element type.
func (v *Value) DType() DType { return v.dtype }

// Shape returns a copy of the static shape.
func (v *Value) Shape() Shape { return v.shape.Clone() }

// Rank returns the number of dimensions.
func (v *Value) Rank() int { return len(v.shape) }

// Kind returns where the value comes from.
func (v *Value) Kind() ValueKind { return v.kind }

// Producer returns the node that computes v, or nil for inputs and initializers.
func (v *Value) Producer() *Node { return v.producer }

// Data returns an initializer's in-memory data, or nil.
func (v *Value) Data() *Tensor { return v.data }

// External returns where an initializer's bytes live outside the graph, or nil.
func (v *Value) External() *ExternalRef { return v.external }

// Graph returns the graph v belongs to.
func (v *Value) Graph() *Graph { return v.g }

// String formats v as "name:float32[batch, 4]".
func (v *Value) String() string { return fmt.Sprintf("%s:%v%v", v.name, v.dtype, v.shape) }

// Attr is one node attribute. Value is an int64, float32, string, []int64,
// []float32 or *Tensor.
type Attr struct {
	Name  string
	Value any
}

// Node is one operator application. Nodes are kept in the order they were
// added, which is a topological order.
type Node struct {
	id      int
	op      string
	name    string
	inputs  []*Value // nil entries are omitted optional inputs
	outputs []*Value
	attrs   []Attr
}

// ID returns the node's index in the graph's node list.
func (n *Node) ID() int { return n.id }

// OpType returns the ONNX op type.
func (n *Node) OpType() string { return n.op }

// Name returns the node name.
func (n *Node) Name() string { return n.name }

// Inputs returns the inputs; a nil entry is an omitted optional input.
func (n *Node) Inputs() []*Value { return append([]*Value(nil), n.inputs...) }

// Outputs returns the outputs.
func (n *Node) Outputs() []*Value { return append([]*Value(nil), n.outputs...) }

// Attrs returns the attributes in the order they were given.
func (n *Node) Attrs() []Attr { return append([]Attr(nil), n.attrs...) }

// Attr returns the attribute called name.
func (n *Node) Attr(name string) (any, bool) {
	for _, a := range n.attrs {
		if a.Name == name {
			return a.Value, true
		}
	}
	return nil, false
}

// Graph is an in-memory ONNX graph under construction. Op methods check
// their arguments and infer the output dtype and shape; the first failure is
// kept and returned by Err (later ops become no-ops), in the style of
// bufio.Scanner, so model code reads as straight-line math.
//
// A Graph is not safe for concurrent use.
type Graph struct {
	name     string
	values   []*Value
	nodes    []*Node
	inputs   []*Value
	inits    []*Value
	outputs  []*Value
	names    map[string]*Value
	users    map[*Value][]*Node
	err      error
	autoName int
}

// New returns an empty graph called name.
func New(name string) *Graph {
	return &Graph{name: name, names: map[string]*Value{}, users: map[*Value][]*Node{}}
}

// Name returns the graph name.
func (g *Graph) Name() string { return g.name }

// Err returns the first error any builder call hit, or nil.
func (g *Graph) Err() error { return g.err }

// Nodes returns the nodes in topological (insertion) order. Walk it from the
// end to visit nodes in reverse, as reverse-mode autodiff does.
func (g *Graph) Nodes() []*Node { return append([]*Node(nil), g.nodes...) }

// Inputs returns the graph inputs in declaration order.
func (g *Graph) Inputs() []*Value { return append([]*Value(nil), g.inputs...) }

// Initializers returns the initializers in declaration order.
func (g *Graph) Initializers() []*Value { return append([]*Value(nil), g.inits...) }

// Outputs returns the graph outputs in declaration order.
func (g *Graph) Outputs() []*Value { return append([]*Value(nil), g.outputs...) }

// Consumers returns the nodes that read v, in insertion order.
func (g *Graph) Consumers(v *Value) []*Node { return append([]*Node(nil), g.users[v]...) }

// Lookup returns the value called name, if any.
func (g *Graph) Lookup(name string) (*Value, bool) {
	v, ok := g.names[name]
	return v, ok
}

// setErr records err if it is the first.
func (g *Graph) setErr(err error) {
	if g.err == nil {
		g.err = err
	}
}

// fail records an OpError for op and returns a placeholder value so that
// builder code can continue; the graph is unusable until rebuilt.
func (g *Graph) fail(op string, err error) *Value {
	g.setErr(&OpError{Op: op, Node: fmt.Sprintf("%s_%d", op, len(g.nodes)), Err: err})
	return g.placeholder()
}

func (g *Graph) placeholder() *Value {
	return &Value{g: g, id: -1, name: "<invalid>", dtype: Float32, kind: KindNodeOutput}
}

func (g *Graph) newValue(name string, dt DType, shape Shape, kind ValueKind) *Value {
	v := &Value{g: g, id: len(g.values), name: name, dtype: dt, shape: shape.Clone(), kind: kind}
	g.values = append(g.values, v)
	g.names[name] = v
	return v
}

func (g *Graph) claimName(what, name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty %s name", ErrInvalidArg, what)
	}
	if _, dup := g.names[name]; dup {
		return fmt.Errorf("%w: %s %q", ErrDuplicateName, what, name)
	}
	return nil
}

// Input declares a graph input called name. Symbolic dims (Sym("batch"))
// become dim_param entries in the ONNX file.
func (g *Graph) Input(name string, dt DType, shape Shape) *Value {
	if err := g.claimName("input", name); err != nil {
		return g.fail("Input", err)
	}
	if !dt.Valid() {
		return g.fail("Input", fmt.Errorf("%w: %v", ErrDType, dt))
	}
	v := g.newValue(name, dt, shape, KindInput)
	g.inputs = append(g.inputs, v)
	return v
}

// InputAnyRank declares a graph input whose rank the file leaves open, so
// callers may feed a scalar or a one-element vector (num_logits_to_keep:
// transformers.js feeds a scalar, onnxruntime_go cannot make one). Shape
// inference inside the graph sees shape.
func (g *Graph) InputAnyRank(name string, dt DType, shape Shape) *Value {
	v := g.Input(name, dt, shape)
	if v != nil && v.kind == KindInput {
		v.anyRank = true
	}
	return v
}

// Initializer declares a weight called name whose data is stored in the
// graph file (or, at Save time, in an external weights file).
func (g *Graph) Initializer(name string, t *Tensor) *Value {
	if err := g.claimName("initializer", name); err != nil {
		return g.fail("Initializer", err)
	}
	if t == nil {
		return g.fail("Initializer", fmt.Errorf("%w: nil tensor for %q", ErrInvalidArg, name))
	}
	if err := checkLen(t.Dims, t.Len()); err != nil {
		return g.fail("Initializer", fmt.Errorf("%q: %w", name, err))
	}
	v := g.newValue(name, t.DType, t.Shape(), KindInitializer)
	v.data = t
	g.inits = append(g.inits, v)
	return v
}

// ExternalInitializer declares a weight called name whose bytes live outside
// the graph, at ref (see ExternalRef). The graph never holds the data, so
// the weights file can be replaced without rebuilding the graph as long as
// the layout (names, dtypes, shapes, offsets) stays the same.
func (g *Graph) ExternalInitializer(name string, dt DType, shape Shape, ref ExternalRef) *Value {
	if err := g.claimName("initializer", name); err != nil {
		return g.fail("Initializer", err)
	}
	n := shape.NumElements()
	if n < 0 || !dt.Valid() {
		return g.fail("Initializer", fmt.Errorf("%w: external %q needs a fixed shape and known dtype, got %v%v", ErrInvalidArg, name, dt, shape))
	}
	if ref.Location == "" || ref.Length != n*int64(dt.Size()) || ref.Offset < 0 {
		return g.fail("Initializer", fmt.Errorf("%w: external %q: ref %+v does not fit %v%v", ErrInvalidArg, name, ref, dt, shape))
	}
	v := g.newValue(name, dt, shape, KindInitializer)
	r := ref
	v.external = &r
	g.inits = append(g.inits, v)
	return v
}

// Output marks v as a graph output called name. If v is an unnamed node
// output it is renamed; otherwise an Identity node is inserted. dims, when
// given, refine the recorded output shape (for example naming an unknown
// dim "num_tokens"); they must agree with v's fixed dims.
func (g *Graph) Output(name string, v *Value, dims ...Dim) *Value {
	if err := g.check("Output", v); err != nil {
		return g.fail("Output", err)
	}
	shape := v.shape
	if len(dims) > 0 {
		refined, err := refineShape(v.shape, dims)
		if err != nil {
			return g.fail("Output", fmt.Errorf("%q: %w", name, err))
		}
		shape = refined
	}
	if v.name != name {
		if err := g.claimName("output", name); err != nil {
			return g.fail("Output", err)
		}
		if v.kind == KindNodeOutput && v.producer != nil && g.isAutoName(v) {
			delete(g.names, v.name)
			v.name = name
			g.names[name] = v
		} else {
			v = g.node("Identity", []*Value{v}, nil, out{name: name, dt: v.dtype, shape: shape})[0]
		}
	}
	v.shape = shape
	g.outputs = append(g.outputs, v)
	return v
}

func refineShape(have Shape, dims []Dim) (Shape, error) {
	if len(dims) != len(have) {
		return nil, fmt.Errorf("%w: rank %d given for value of shape %v", ErrShape, len(dims), have)
	}
	for i, d := range dims {
		if have[i].Fixed() && d != have[i] {
			return nil, fmt.Errorf("%w: dim %d is %v, cannot refine to %v", ErrShape, i, have[i], d)
		}
	}
	return append(Shape(nil), dims...), nil
}

func (g *Graph) isAutoName(v *Value) bool {
	for _, o := range g.outputs {
		if o == v {
			return false
		}
	}
	return len(v.name) > 0 && v.name[0] == '_'
}

// check returns an error if any of vs is nil or foreign (or the graph
// already failed).
func (g *Graph) check(op string, vs ...*Value) error {
	for i, v := range vs {
		if v == nil {
			return fmt.Errorf("%w: input %d of %s", ErrNilValue, i, op)
		}
		if v.g != g {
			return fmt.Errorf("%w: %s", ErrForeignValue, v.name)
		}
	}
	return nil
}

// out describes one node output for node().
type out struct {
	name  string
	dt    DType
	shape Shape
}

// node appends a node; callers have validated inputs and inferred outputs.
func (g *Graph) node(op string, inputs []*Value, attrs []Attr, outs ...out) []*Value {
	n := &Node{id: len(g.nodes), op: op, name: fmt.Sprintf("%s_%d", op, len(g.nodes)), inputs: inputs, attrs: attrs}
	for _, o := range outs {
		name := o.name
		if name == "" {
			g.autoName++
			name = fmt.Sprintf("_%s_%d", op, g.autoName)
		}
		v := g.newValue(name, o.dt, o.shape, KindNodeOutput)
		v.producer = n
		n.outputs = append(n.outputs, v)
	}
	for _, in := range inputs {
		if in != nil {
			g.users[in] = append(g.users[in], n)
		}
	}
	g.nodes = append(g.nodes, n)
	return n.outputs
}

// OutType is the declared type of an output of AddNode.
type OutType struct {
	DType DType
	Shape Shape
}

// AddNode appends a node of any standard ONNX op with caller-declared output
// types. It is the escape hatch for ops without a typed helper (and for
// autodiff rules that know their output shapes); the builder does no shape
// inference for it. A nil input is an omitted optional input.
func (g *Graph) AddNode(op string, inputs []*Value, attrs []Attr, outs ...OutType) []*Value {
	if g.err != nil {
		return placeholders(g, len(outs))
	}
	for i, in := range inputs {
		if in != nil && in.g != g {
			g.fail(op, fmt.Errorf("%w: input %d (%s)", ErrForeignValue, i, in.name))
			return placeholders(g, len(outs))
		}
	}
	if len(outs) == 0 {
		g.fail(op, fmt.Errorf("%w: a node needs at least one output", ErrInvalidArg))
		return nil
	}
	os := make([]out, len(outs))
	for i, o := range outs {
		os[i] = out{dt: o.DType, shape: o.Shape}
	}
	return g.node(op, append([]*Value(nil), inputs...), append([]Attr(nil), attrs...), os...)
}

func placeholders(g *Graph, n int) []*Value {
	vs := make([]*Value, n)
	for i := range vs {
		vs[i] = g.placeholder()
	}
	return vs
}

// ParamNames returns the initializer names, sorted.
func (g *Graph) ParamNames() []string {
	names := make([]string, len(g.inits))
	for i, v := range g.inits {
		names[i] = v.name
	}
	sort.Strings(names)
	return names
}
