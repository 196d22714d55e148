package graph

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors of the autodiff, optimizer and train-step code.
var (
	ErrNoGradRule      = errors.New("graph: no gradient rule for op")
	ErrLossNotScalar   = errors.New("graph: loss is not a scalar")
	ErrNotDifferential = errors.New("graph: value is not differentiable")
	ErrDomain          = errors.New("graph: op outside the default ONNX domain")
)

// GradError reports a failure while differentiating one node: the op type,
// the node name and why (wrapping ErrNoGradRule, ErrShape, …).
type GradError struct {
	Op   string // ONNX op type, e.g. "TopK"
	Node string // node name, e.g. "TopK_12"
	Err  error  // the cause
}

// Error formats the error as "graph: grad of TopK (TopK_12): …".
func (e *GradError) Error() string {
	return fmt.Sprintf("graph: grad of %s (%s): %v", e.Op, e.Node, e.Err)
}

// Unwrap returns the cause.
func (e *GradError) Unwrap() error { return e.Err }

// EmbeddingGrad selects how Gather (embedding lookup) is differentiated.
type EmbeddingGrad int

const (
	// EmbeddingScatter accumulates rows with ScatterND(reduction="add"):
	// memory proportional to the batch, the default.
	EmbeddingScatter EmbeddingGrad = iota
	// EmbeddingOneHot multiplies a one-hot [tokens, vocab] matrix by the
	// upstream gradient with MatMul: standard kernels everywhere, memory
	// proportional to tokens × vocab.
	EmbeddingOneHot
)

// GradOptions tunes Grad. The zero value is the default.
type GradOptions struct {
	// Embedding selects the Gather/GatherElements gradient (default
	// EmbeddingScatter).
	Embedding EmbeddingGrad
	// Stop lists extra values that are treated as constants (no gradient
	// flows through them), in addition to StopGradient outputs.
	Stop []*Value
}

// Grad appends to g the nodes computing the gradient of the scalar loss
// with respect to each of wrt, and returns them in wrt's order. A wrt value
// the loss does not depend on gets a zero gradient. loss must be a float
// value with exactly one element (rank 0 or all dims 1); wrt must be float
// values of g (inputs, initializers or node outputs).
func Grad(g *Graph, loss *Value, wrt []*Value) ([]*Value, error) {
	return GradWith(g, loss, wrt, GradOptions{})
}

// GradWith is Grad with options.
func GradWith(g *Graph, loss *Value, wrt []*Value, opts GradOptions) ([]*Value, error) {
	if g == nil {
		return nil, fmt.Errorf("%w: nil graph", ErrInvalidArg)
	}
	if err := g.Err(); err != nil {
		return nil, fmt.Errorf("graph: grad: forward graph failed: %w", err)
	}
	if err := checkGradArgs(g, loss, wrt); err != nil {
		return nil, err
	}
	r := newRev(g, loss, wrt, opts)
	r.grads[loss] = r.constLike(loss, 1)
	nodes := g.nodes
	for i := len(nodes) - 1; i >= 0; i-- {
		if err := r.visit(nodes[i]); err != nil {
			return nil, err
		}
	}
	out := make([]*Value, len(wrt))
	for i, w := range wrt {
		d := r.grads[w]
		if d == nil {
			d = r.zerosLike(w)
		}
		out[i] = d
	}
	if err := g.Err(); err != nil {
		return nil, fmt.Errorf("graph: grad: %w", err)
	}
	return out, nil
}

func checkGradArgs(g *Graph, loss *Value, wrt []*Value) error {
	if err := g.check("Grad", loss); err != nil {
		return fmt.Errorf("graph: grad: loss: %w", err)
	}
	if !loss.dtype.IsFloat() {
		return fmt.Errorf("%w: loss %s has dtype %v", ErrNotDifferential, loss.name, loss.dtype)
	}
	if loss.shape.NumElements() != 1 {
		return fmt.Errorf("%w: loss %s has shape %v; reduce it to one element", ErrLossNotScalar, loss.name, loss.shape)
	}
	if len(wrt) == 0 {
		return fmt.Errorf("%w: grad: no values to differentiate with respect to", ErrInvalidArg)
	}
	for i, w := range wrt {
		if err := g.check("Grad", w); err != nil {
			return fmt.Errorf("graph: grad: wrt[%d]: %w", i, err)
		}
		if !w.dtype.IsFloat() {
			return fmt.Errorf("%w: wrt[%d] %s has dtype %v", ErrNotDifferential, i, w.name, w.dtype)
		}
	}
	return nil
}

// rev is the state of one reverse pass.
type rev struct {
	g            *Graph
	opts         GradOptions
	need         map[*Value]bool   // values on a path from wrt to the loss
	grads        map[*Value]*Value // accumulated gradient of each value
	forwardNodes int               // nodes with a smaller id belong to the forward graph
	// fused marks forward nodes whose gradient a consumer's rule already
	// pushed through (fused rules, see fusedProducer); they are skipped.
	fused map[*Node]bool
}

func newRev(g *Graph, loss *Value, wrt []*Value, opts GradOptions) *rev {
	stop := map[*Value]bool{}
	for _, v := range opts.Stop {
		stop[v] = true
	}
	from := map[*Value]bool{}
	for _, w := range wrt {
		from[w] = true
	}
	for _, n := range g.nodes {
		if isStopGradient(n) {
			continue
		}
		if !anyIn(n.inputs, from) {
			continue
		}
		for _, o := range n.outputs {
			if o.dtype.IsFloat() && !stop[o] {
				from[o] = true
			}
		}
	}
	to := map[*Value]bool{loss: true}
	for i := len(g.nodes) - 1; i >= 0; i-- {
		n := g.nodes[i]
		if !anyIn(n.outputs, to) {
			continue
		}
		for _, in := range n.inputs {
			if in != nil && in.dtype.IsFloat() {
				to[in] = true
			}
		}
	}
	need := map[*Value]bool{}
	for v := range from {
		if to[v] {
			need[v] = true
		}
	}
	return &rev{g: g, opts: opts, need: need, grads: map[*Value]*Value{}, forwardNodes: len(g.nodes), fused: map[*Node]bool{}}
}

func anyIn(vs []*Value, set map[*Value]bool) bool {
	for _, v := range vs {
		if v != nil && set[v] {
			return true
		}
	}
	return false
}

// visit differentiates one node if it is on the gradient path.
func (r *rev) visit(n *Node) error {
	need := make([]bool, len(n.inputs))
	anyNeed := false
	for i, in := range n.inputs {
		need[i] = in != nil && r.need[in]
		anyNeed = anyNeed || need[i]
	}
	if !anyNeed || !anyIn(n.outputs, r.need) || r.fused[n] {
		return nil
	}
	rule, ok := gradRules[n.op]
	if !ok {
		return &GradError{Op: n.op, Node: n.name, Err: fmt.Errorf("%w %s on the path to the loss", ErrNoGradRule, n.op)}
	}
	dys := make([]*Value, len(n.outputs))
	for i, o := range n.outputs {
		dys[i] = r.grads[o]
		if dys[i] == nil && o.dtype.IsFloat() {
			dys[i] = r.zerosLike(o)
		}
	}
	dxs, err := rule(r, n, dys, need)
	if err == nil {
		err = r.g.Err()
	}
	if err != nil {
		return &GradError{Op: n.op, Node: n.name, Err: err}
	}
	return r.accumulate(n, dxs, need)
}

// accumulate checks each returned gradient against its input and adds it
// to the input's running sum.
func (r *rev) accumulate(n *Node, dxs []*Value, need []bool) error {
	if len(dxs) != len(n.inputs) {
		return &GradError{Op: n.op, Node: n.name, Err: fmt.Errorf("%w: rule returned %d gradients for %d inputs", ErrInvalidArg, len(dxs), len(n.inputs))}
	}
	for i, in := range n.inputs {
		if !need[i] {
			continue
		}
		d := dxs[i]
		if d == nil && in.producer != nil && r.fused[in.producer] {
			continue // the rule differentiated in's producer too
		}
		if d == nil {
			return &GradError{Op: n.op, Node: n.name, Err: fmt.Errorf("%w: no gradient for input %d (%s)", ErrNotDifferential, i, in.name)}
		}
		if d.dtype != in.dtype || !d.shape.Equal(in.shape) {
			return &GradError{Op: n.op, Node: n.name, Err: fmt.Errorf("%w: gradient %v%v for input %s", ErrShape, d.dtype, d.shape, in)}
		}
		r.addGrad(in, d)
	}
	return r.g.Err()
}

// addGrad adds d to v's running gradient.
func (r *rev) addGrad(v, d *Value) {
	if prev := r.grads[v]; prev != nil {
		d = r.g.Add(prev, d)
	}
	r.grads[v] = d
}

// fusedProducer returns the producer of v when a rule of v's only reader
// may differentiate through it as well: op matches, the producer is a
// forward node, v is its only output, exactly one forward node reads v,
// and no gradient has reached v by another route (v is not the loss).
// The caller marks the producer in r.fused once it has pushed the
// gradient to the producer's inputs.
func (r *rev) fusedProducer(v *Value, op string) *Node {
	p := v.producer
	if p == nil || p.op != op || p.id >= r.forwardNodes || len(p.outputs) != 1 || r.grads[v] != nil {
		return nil
	}
	readers := 0
	for _, n := range r.g.users[v] {
		if n.id < r.forwardNodes {
			readers++
		}
	}
	for _, o := range r.g.outputs {
		if o == v {
			return nil
		}
	}
	if readers != 1 {
		return nil
	}
	return p
}

// stopGradientPrefix marks the Identity nodes StopGradient emits; the mark
// lives in the node name so it survives serialisation.
const stopGradientPrefix = "StopGradient_"

func isStopGradient(n *Node) bool {
	return n.op == "Identity" && len(n.name) > len(stopGradientPrefix) && n.name[:len(stopGradientPrefix)] == stopGradientPrefix
}

// CheckDefaultDomain returns an error wrapping ErrDomain naming the first
// node of g whose op type is not an operator of the default ONNX domain
// (ai.onnx, opset ≤ 17), e.g. a com.microsoft *Grad op or an
// ai.onnx.preview.training op added through AddNode. The builder writes
// every node in the default domain, so such a node would fail to load.
func CheckDefaultDomain(g *Graph) error {
	for _, n := range g.nodes {
		if !standardOps[n.op] {
			return fmt.Errorf("%w: %s (%s)", ErrDomain, n.op, n.name)
		}
	}
	return nil
}

// standardOps lists the operators of the default ONNX domain up to opset 17.
var standardOps = func() map[string]bool {
	m := map[string]bool{}
	for _, op := range strings.Fields(`Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh
	AveragePool BatchNormalization Bernoulli BitShift BlackmanWindow Cast CastLike Ceil Celu Clip
	Compress Concat ConcatFromSequence Constant ConstantOfShape Conv ConvInteger ConvTranspose Cos
	Cosh CumSum DFT DepthToSpace DequantizeLinear Det Div Dropout DynamicQuantizeLinear Einsum Elu
	Equal Erf Exp Expand EyeLike Flatten Floor GRU Gather GatherElements GatherND Gemm
	GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample HammingWindow
	HannWindow HardSigmoid HardSwish Hardmax Identity If InstanceNormalization IsInf IsNaN LRN LSTM
	LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax Loop LpNormalization LpPool MatMul
	MatMulInteger Max MaxPool MaxRoiPool MaxUnpool Mean MelWeightMatrix Min Mod Mul Multinomial Neg
	NegativeLogLikelihoodLoss NonMaxSuppression NonZero Not OneHot Optional OptionalGetElement
	OptionalHasElement Or PRelu Pad Pow QLinearConv QLinearMatMul QuantizeLinear RNN RandomNormal
	RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2
	ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
	ReduceSumSquare Relu Reshape Resize ReverseSequence RoiAlign Round STFT Scan Scatter
	ScatterElements ScatterND Selu SequenceAt SequenceConstruct SequenceEmpty SequenceErase
	SequenceInsert SequenceLength SequenceMap Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax
	SoftmaxCrossEntropyLoss Softplus Softsign SpaceToDepth Split SplitToSequence Sqrt Squeeze
	StringNormalizer Sub Sum Tan Tanh TfIdfVectorizer ThresholdedRelu Tile TopK Transpose Trilu
	Unique Unsqueeze Where Xor`) {
		m[op] = true
	}
	return m
}()
