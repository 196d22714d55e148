package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
)

// sslRun is one pretraining run: the train-step session, its state (the
// vision weights and the projection head, with AdamW moments) and the
// image processor the views go through.
type sslRun struct {
	cfg   SSLConfig
	shape SSLShape
	image preprocessing.Config
	state *State
	sess  *runtime.Session
	ts    *graph.TrainStep
	sched Schedule
	rng   *rand.Rand
}

// newSSLRun builds the train step and the state from src's vision weights.
func newSSLRun(ctx context.Context, env *runtime.Env, src *models.Bundle, cfg SSLConfig, shape SSLShape) (_ *sslRun, err error) {
	arch := src.Manifest.Architecture
	vlm, err := models.Open(ctx, src.Dir, models.VLMOptions{Env: env})
	if err != nil {
		return nil, fmt.Errorf("train: ssl: %w", err)
	}
	image := vlm.ImageConfig()
	if err := vlm.Close(); err != nil {
		return nil, fmt.Errorf("train: ssl: %w", err)
	}
	g, head, err := buildSSLObjective(arch, shape, cfg)
	if err != nil {
		return nil, err
	}
	params := VisionParams(arch)
	for _, sp := range head {
		params = append(params, sp.Name)
	}
	ts, err := graph.BuildTrainStep(g, graph.TrainStepConfig{Loss: OutLoss, Params: params, AdamW: cfg.AdamW})
	if err != nil {
		return nil, fmt.Errorf("train: ssl train step: %w", err)
	}
	all, err := BundleWeights(src)
	if err != nil {
		return nil, err
	}
	ws := sslHeadInit(head, cfg.Seed)
	for _, name := range VisionParams(arch) {
		ws[name] = all[name]
	}
	st, err := NewState(ws, params)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, st.Close())
		}
	}()
	raw, err := g.Marshal()
	if err != nil {
		return nil, fmt.Errorf("train: serialise ssl step: %w", err)
	}
	sess, err := env.NewSessionFromBytes(ctx, "ssl_step", raw, withoutSpinning(cfg.Session))
	if err != nil {
		return nil, fmt.Errorf("train: open ssl step: %w", err)
	}
	warm := cfg.Steps / 10
	return &sslRun{cfg: cfg, shape: shape, image: image, state: st, sess: sess, ts: ts,
		sched: Schedule{LR: cfg.LR, Warmup: warm, Decay: "cosine", Steps: cfg.Steps},
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0x5eed))}, nil
}

// buildSSLObjective returns the forward graph of cfg.Objective and its
// train-only head.
func buildSSLObjective(arch models.ArchConfig, shape SSLShape, cfg SSLConfig) (*graph.Graph, []graph.WeightSpec, error) {
	if cfg.Objective == MIM {
		g, err := BuildMIMGraph(arch, shape)
		return g, sslRecSpecs(arch), err
	}
	g, err := BuildSSLGraph(arch, shape, cfg.ProjDim, cfg.Temperature)
	return g, sslProjSpecs(arch, cfg.ProjDim), err
}

// sslParamNames lists the projection head's weights.
func sslParamNames(cfg models.ArchConfig, proj int) []string {
	var out []string
	for _, s := range sslProjSpecs(cfg, proj) {
		out = append(out, s.Name)
	}
	return out
}

func (r *sslRun) close() error {
	if r == nil {
		return nil
	}
	return errors.Join(r.sess.Close(), r.state.Close())
}

// loop runs cfg.Steps updates over the images in seeded shuffled order.
func (r *sslRun) loop(ctx context.Context, srcs []*preprocessing.Source) (*SSLResult, error) {
	res := &SSLResult{}
	start := time.Now()
	var order []int
	for step := 1; step <= r.cfg.Steps; step++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("train: ssl cancelled before step %d: %w", step, err)
		}
		idx := make([]int, r.shape.Pairs)
		for i := range idx {
			if len(order) == 0 {
				order = r.rng.Perm(len(srcs))
			}
			idx[i], order = order[0], order[1:]
		}
		batch, err := r.batch(srcs, idx)
		if err != nil {
			return nil, err
		}
		lr := r.sched.At(step)
		st, err := r.step(ctx, batch, lr)
		if err != nil {
			return nil, err
		}
		res.Steps = append(res.Steps, st)
		if r.cfg.Recorder != nil {
			rec := Record{"step": float64(step), "loss": st.Loss, OutSSLAccuracy: st.Accuracy,
				"grad_norm": st.GradNorm, "learning_rate": lr}
			if err := r.cfg.Recorder.Add(rec); err != nil {
				return nil, err
			}
		}
	}
	res.Wall = time.Since(start)
	return res, nil
}

// sslInput is one batch tensor of a step, in Go memory.
type sslInput struct {
	name  string
	shape []int64
	data  []float32
}

// batch returns the step's inputs for the images at idx.
func (r *sslRun) batch(srcs []*preprocessing.Source, idx []int) ([]sslInput, error) {
	if r.cfg.Objective == MIM {
		return r.masked(srcs, idx)
	}
	var first, second []float32
	for _, i := range idx {
		for v := range 2 {
			p, err := r.view(srcs[i])
			if err != nil {
				return nil, err
			}
			if v == 0 {
				first = append(first, p.Values...)
			} else {
				second = append(second, p.Values...)
			}
		}
	}
	n := int64(2 * len(idx) * r.shape.Patches * r.shape.Patches)
	return []sslInput{{InSSLPixels, []int64{n, int64(len(first)) * 2 / n}, append(first, second...)}}, nil
}

// view draws one augmented view and runs the image processor on it.
func (r *sslRun) view(src *preprocessing.Source) (*preprocessing.Pixels, error) {
	img, err := preprocessing.Augment(src, r.cfg.Augment, r.rng)
	if err != nil {
		return nil, fmt.Errorf("train: ssl: %w", err)
	}
	p, err := r.image.Process(img)
	if err != nil {
		return nil, fmt.Errorf("train: ssl: %w", err)
	}
	if want := r.shape.Patches * r.shape.Patches; p.NumPatches != want {
		return nil, fmt.Errorf("%w: ssl view has %d patches, the step expects %d", ErrShape, p.NumPatches, want)
	}
	return p, nil
}

// masked draws one view per image and masks round(MaskRatio·windows) of
// its merge windows (at least one, never all): the masked pixels, the
// original windows as targets, and the mask.
func (r *sslRun) masked(srcs []*preprocessing.Source, idx []int) ([]sslInput, error) {
	var px, target, mask []float32
	var width, pd int
	for _, i := range idx {
		p, err := r.view(srcs[i])
		if err != nil {
			return nil, err
		}
		unit := p.MergeSize * p.MergeSize
		width, pd = unit*p.PatchDim, p.PatchDim
		windows := p.NumPatches / unit
		k := min(windows-1, max(1, int(math.Round(r.cfg.MaskRatio*float64(windows)))))
		hide := make([]float32, windows)
		for _, w := range r.rng.Perm(windows)[:k] {
			hide[w] = 1
		}
		target = append(target, p.Values...)
		vals := append([]float32(nil), p.Values...)
		for w, h := range hide {
			if h == 1 {
				clear(vals[w*width : (w+1)*width])
			}
		}
		px, mask = append(px, vals...), append(mask, hide...)
	}
	tokens := int64(len(mask))
	return []sslInput{
		{InSSLPixels, []int64{int64(len(px) / pd), int64(pd)}, px},
		{InMIMTarget, []int64{tokens, int64(width)}, target},
		{InMIMMask, []int64{tokens, 1}, mask},
	}, nil
}

// step runs one update; a non-finite loss or gradient norm discards it.
func (r *sslRun) step(ctx context.Context, batch []sslInput, lr float64) (_ SSLStep, err error) {
	stepNo := r.state.Step + 1
	fail := func(err error) (SSLStep, error) {
		return SSLStep{}, fmt.Errorf("train: ssl step %d: %w", stepNo, err)
	}
	ins, err := r.state.inputs(r.ts)
	if err != nil {
		return fail(err)
	}
	var owned []*runtime.Tensor
	defer func() { err = errors.Join(err, runtime.CloseAll(owned...)) }()
	batch = append(batch, sslInput{r.ts.Step, []int64{1}, []float32{float32(stepNo)}}, sslInput{r.ts.LR, []int64{1}, []float32{float32(lr)}})
	for _, in := range batch {
		t, err := runtime.NewTensor(in.shape, in.data)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", in.name, err))
		}
		owned = append(owned, t)
		ins = append(ins, runtime.NamedTensor{Name: in.name, Tensor: t})
	}
	res, err := r.state.runStep(ctx, r.sess, r.ts, ins)
	if err != nil {
		return fail(err)
	}
	return SSLStep{Step: stepNo, Loss: res.Loss, Accuracy: res.Metrics[OutSSLAccuracy], GradNorm: res.GradNorm, LR: lr}, nil
}
