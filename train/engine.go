package train

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
)

// Bucket is a static (batch, length) shape: one train-step graph is built
// per bucket, lazily, and cached.
type Bucket struct {
	Batch  int // rows per step (short batches are padded with zero-weight rows)
	Length int // tokens per row (rows are right-padded)
	// Grid is the (t, h, w) patch grid of every row's image when the
	// vision encoder runs inside the graph (rows carry Row.Pixels; a row
	// without an image gets a zero image whose features are masked out).
	// The zero value means no vision part: rows carry cached features.
	// The Loader sets it from the rows.
	Grid [3]int64
}

// patches returns the patch count of one image of the bucket's grid (0:
// no vision part).
func (b Bucket) patches() int { return int(b.Grid[0] * b.Grid[1] * b.Grid[2]) }

// EngineConfig says what an Engine trains.
type EngineConfig struct {
	Objective Objective
	Arch      models.ArchConfig
	Loss      LossConfig
	// AdamW holds the optimizer constants; the zero value means
	// graph.DefaultAdamW().
	AdamW graph.AdamWConfig
	// TrainVision puts the vision encoder (patch embedding, rotary
	// attention blocks, MLPs, 2×2 merger) into the train graphs, so the
	// objective updates it; rows must then carry Row.Pixels (NewPrepFor).
	// false (the default) keeps the encoder frozen and outside the graphs:
	// rows carry its cached features, as before.
	TrainVision bool
	// Freeze lists what stays fixed: the module names "vision",
	// "embeddings", "decoder" and "head" (see the Module* constants), or
	// raw parameter-name prefixes (e.g. "model.layers.0."). "vision" with
	// TrainVision is the decoder-only mode (no vision part in the graphs).
	// With tie_word_embeddings the embeddings and the LM head are one
	// tensor: naming only one of the two modules is an error. nil freezes
	// nothing beyond the vision rule of TrainVision.
	Freeze []string
	// Session configures the ONNX Runtime sessions (device, threads).
	// Intra-op spinning is off unless Session.Config sets
	// SpinningConfigKey (see NewEngine).
	Session runtime.SessionOptions
	// Embedding selects the embedding-gradient form (graph.EmbeddingScatter
	// by default; EmbeddingOneHot where ScatterND add lacks kernels).
	Embedding graph.EmbeddingGrad
}

// StepResult is what one update reports.
type StepResult struct {
	Loss     float64            // the objective's loss before the update
	GradNorm float64            // global gradient norm before clipping
	Metrics  map[string]float64 // scalar metrics of the graph (token_accuracy, kl, clip_ratio/…)
	Vectors  map[string][]float32
}

// Engine runs train steps: it owns the State and one ONNX Runtime session
// per bucket (train step, and forward-only on demand). Not safe for
// concurrent use.
type Engine struct {
	env   *runtime.Env
	cfg   EngineConfig
	state *State
	steps map[Bucket]*stepSession
	fwd   map[Bucket]*runtime.Session
	mu    sync.Mutex
}

type stepSession struct {
	sess *runtime.Session
	ts   *graph.TrainStep
}

// NewEngine returns an engine training state with cfg; state must train
// exactly TrainedParams(cfg) (NewTrainer builds both). The engine does not
// own env or state.
func NewEngine(env *runtime.Env, cfg EngineConfig, state *State) (*Engine, error) {
	if env == nil || state == nil {
		return nil, fmt.Errorf("%w: engine needs an ONNX Runtime env and a state", ErrConfig)
	}
	if cfg.AdamW == (graph.AdamWConfig{}) {
		cfg.AdamW = graph.DefaultAdamW()
	}
	if err := cfg.AdamW.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := cfg.Arch.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := validateFreeze(cfg); err != nil {
		return nil, err
	}
	if want := TrainedParams(cfg); !slices.Equal(state.Params, want) {
		return nil, fmt.Errorf("%w: the state trains %d parameters, the config %d (freeze settings differ? build both with NewTrainer)",
			ErrConfig, len(state.Params), len(want))
	}
	cfg.Session = withoutSpinning(cfg.Session)
	return &Engine{env: env, cfg: cfg, state: state, steps: map[Bucket]*stepSession{}, fwd: map[Bucket]*runtime.Session{}}, nil
}

// SpinningConfigKey is the ONNX Runtime session config entry that lets
// intra-op threads busy-wait for work between operators.
const SpinningConfigKey = "session.intra_op.allow_spinning"

// withoutSpinning returns o with intra-op spinning turned off unless o
// sets it. A train step is some 1,500 operators, most of them small;
// threads that busy-wait between them take the cores the Go side and
// other processes share. On a shared 2-core machine (BenchmarkTrainStep)
// spinning doubled both the step and the forward time.
func withoutSpinning(o runtime.SessionOptions) runtime.SessionOptions {
	if _, ok := o.Config[SpinningConfigKey]; ok {
		return o
	}
	cfg := maps.Clone(o.Config)
	if cfg == nil {
		cfg = map[string]string{}
	}
	cfg[SpinningConfigKey] = "0"
	o.Config = cfg
	return o
}

// State returns the trained state.
func (e *Engine) State() *State { return e.state }

// Close releases every session (not the state). It is nil-safe.
func (e *Engine) Close() error {
	if e == nil {
		return nil
	}
	var err error
	for _, s := range e.steps {
		err = errors.Join(err, s.sess.Close())
	}
	for _, s := range e.fwd {
		err = errors.Join(err, s.Close())
	}
	e.steps, e.fwd = map[Bucket]*stepSession{}, map[Bucket]*runtime.Session{}
	return err
}

// BuildTrainStep returns the train-step graph of cfg for bucket b; params
// are the graph's weight inputs (graphParams: the decoder's, and the vision
// encoder's when VisionTrained), of which the ones cfg.Freeze names stay
// fixed. A bucket with an image Grid needs VisionTrained(cfg); a bucket
// without one in a vision-training engine (a batch of text-only rows)
// declares the vision weights as unused inputs, so they get a zero
// gradient and the step still updates the same parameter set.
func BuildTrainStep(cfg EngineConfig, params []string, b Bucket) (*graph.Graph, *graph.TrainStep, error) {
	vis := VisionTrained(cfg)
	if b.Grid != [3]int64{} && !vis {
		return nil, nil, fmt.Errorf("%w: the batch feeds pixels (image grid %v) but the vision encoder is frozen "+
			"(EngineConfig.TrainVision false or Freeze %q): build rows with NewPrepFor the same config", ErrConfig, b.Grid, ModuleVision)
	}
	g, err := BuildGraph(cfg.Objective, cfg.Arch, b, cfg.Loss)
	if err != nil {
		return nil, nil, err
	}
	if vis && b.Grid == [3]int64{} {
		for _, s := range models.WeightSpecs(cfg.Arch, false) {
			if isVision(s.Name) {
				g.Input(s.Name, s.DType, graph.Dims(s.Dims...))
			}
		}
	}
	ts, err := graph.BuildTrainStep(g, graph.TrainStepConfig{Loss: OutLoss, Params: params, Freeze: freezePrefixes(cfg),
		AdamW: cfg.AdamW, Grad: graph.GradOptions{Embedding: cfg.Embedding}})
	if err != nil {
		return nil, nil, fmt.Errorf("train: %s train step %d×%d: %w", cfg.Objective, b.Batch, b.Length, err)
	}
	return g, ts, nil
}

// stepFor returns the bucket's train-step session, building it on first use.
func (e *Engine) stepFor(ctx context.Context, b Bucket) (*stepSession, error) {
	if s, ok := e.steps[b]; ok {
		return s, nil
	}
	g, ts, err := BuildTrainStep(e.cfg, graphParams(e.cfg), b)
	if err != nil {
		return nil, err
	}
	var trained []string
	for _, p := range ts.Params {
		trained = append(trained, p.Name)
	}
	if !slices.Equal(trained, e.state.Params) {
		return nil, fmt.Errorf("%w: the train step updates %d parameters, the state trains %d (freeze settings differ?)",
			ErrConfig, len(trained), len(e.state.Params))
	}
	sess, err := e.open(ctx, g, fmt.Sprintf("%s_step_%dx%d", e.cfg.Objective, b.Batch, b.Length))
	if err != nil {
		return nil, err
	}
	s := &stepSession{sess: sess, ts: ts}
	e.steps[b] = s
	return s, nil
}

func (e *Engine) open(ctx context.Context, g *graph.Graph, name string) (*runtime.Session, error) {
	raw, err := g.Marshal()
	if err != nil {
		return nil, fmt.Errorf("train: serialise %s: %w", name, err)
	}
	sess, err := e.env.NewSessionFromBytes(ctx, name, raw, e.cfg.Session)
	if err != nil {
		return nil, fmt.Errorf("train: open %s: %w", name, err)
	}
	return sess, nil
}

// Step runs one update on a batch of bucket b (batch holds every In* input
// of the objective), with learning rate lr. A NaN or infinite loss or
// gradient norm is a *StepError wrapping ErrNonFinite and leaves the state
// as it was.
func (e *Engine) Step(ctx context.Context, b Bucket, batch []runtime.NamedTensor, lr float64) (StepResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.steps == nil {
		return StepResult{}, ErrClosed
	}
	s, err := e.stepFor(ctx, b)
	if err != nil {
		return StepResult{}, err
	}
	stepNo := e.state.Step + 1
	fail := func(err error) (StepResult, error) {
		return StepResult{}, &StepError{Step: stepNo, Bucket: b, Err: err}
	}
	ins, err := e.state.inputs(s.ts)
	if err != nil {
		return fail(err)
	}
	for _, name := range s.ts.Frozen {
		t, _ := e.state.param(name)
		ins = append(ins, runtime.NamedTensor{Name: name, Tensor: t})
	}
	stepT, err := runtime.NewTensor([]int64{1}, []float32{float32(stepNo)})
	if err != nil {
		return fail(err)
	}
	lrT, err := runtime.NewTensor([]int64{1}, []float32{float32(lr)})
	if err != nil {
		return fail(errors.Join(err, stepT.Close()))
	}
	defer func() { _ = runtime.CloseAll(stepT, lrT) }()
	ins = append(ins, batch...)
	ins = append(ins, runtime.NamedTensor{Name: s.ts.Step, Tensor: stepT}, runtime.NamedTensor{Name: s.ts.LR, Tensor: lrT})
	res, err := e.state.runStep(ctx, s.sess, s.ts, ins)
	if err != nil {
		return fail(err)
	}
	return res, nil
}

// readResults reads and closes the loss, grad norm and metric outputs.
func readResults(outs []runtime.NamedTensor) (StepResult, error) {
	res := StepResult{Metrics: map[string]float64{}, Vectors: map[string][]float32{}}
	var err error
	for i, o := range outs {
		d, derr := runtime.Data[float32](o.Tensor)
		if derr != nil {
			err = errors.Join(err, fmt.Errorf("output %q: %w", o.Name, derr))
		} else {
			switch {
			case i == 0:
				res.Loss = float64(d[0])
			case o.Name == graph.GradNormOutput:
				res.GradNorm = float64(d[0])
			case len(o.Tensor.Shape()) == 0 || len(d) == 1:
				res.Metrics[o.Name] = float64(d[0])
			default:
				res.Vectors[o.Name] = slices.Clone(d)
			}
		}
		err = errors.Join(err, o.Tensor.Close())
	}
	return res, err
}

// Forward runs the objective's forward pass (no update) on a batch of
// bucket b and returns the loss and metrics.
func (e *Engine) Forward(ctx context.Context, b Bucket, batch []runtime.NamedTensor) (StepResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.steps == nil {
		return StepResult{}, ErrClosed
	}
	sess, ok := e.fwd[b]
	if !ok {
		if b.Grid != [3]int64{} && !VisionTrained(e.cfg) {
			return StepResult{}, fmt.Errorf("%w: the batch feeds pixels (image grid %v) but the vision encoder is frozen", ErrConfig, b.Grid)
		}
		g, err := BuildGraph(e.cfg.Objective, e.cfg.Arch, b, e.cfg.Loss)
		if err != nil {
			return StepResult{}, err
		}
		if sess, err = e.open(ctx, g, fmt.Sprintf("%s_forward_%dx%d", e.cfg.Objective, b.Batch, b.Length)); err != nil {
			return StepResult{}, err
		}
		e.fwd[b] = sess
	}
	ins, err := withWeights(sess, batch, e.state.param)
	if err != nil {
		return StepResult{}, err
	}
	var names []string
	for _, o := range sess.Outputs() {
		names = append(names, o.Name)
	}
	sort.SliceStable(names, func(i, j int) bool { return names[i] == OutLoss && names[j] != OutLoss })
	outs := make([]runtime.NamedTensor, len(names))
	for i, n := range names {
		outs[i].Name = n
	}
	if err := sess.RunInto(ctx, ins, outs); err != nil {
		return StepResult{}, fmt.Errorf("train: forward %d×%d: %w", b.Batch, b.Length, err)
	}
	return readResults(outs)
}

// withWeights returns the batch tensors sess reads plus, for every other
// input of sess, the weight param gives for its name.
func withWeights(sess *runtime.Session, batch []runtime.NamedTensor, param func(string) (*runtime.Tensor, bool)) ([]runtime.NamedTensor, error) {
	inBatch := map[string]bool{}
	for _, t := range batch {
		inBatch[t.Name] = true
	}
	want := map[string]bool{}
	var ins []runtime.NamedTensor
	for _, in := range sess.Inputs() {
		want[in.Name] = true
		if inBatch[in.Name] {
			continue
		}
		t, ok := param(in.Name)
		if !ok {
			return nil, fmt.Errorf("%w: no batch tensor or weight for the graph input %q", ErrConfig, in.Name)
		}
		ins = append(ins, runtime.NamedTensor{Name: in.Name, Tensor: t})
	}
	for _, t := range batch {
		if want[t.Name] {
			ins = append(ins, t)
		}
	}
	return ins, nil
}
