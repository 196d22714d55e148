package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/eval"
)

// Benchmarks the report evaluates on.
const (
	BenchTest    = "test split"          // built test split, kept modalities
	BenchHeldOut = "held-out modalities" // every item of the held-out modalities
	BenchReal    = "real OmniMedVQA"     // the real OmniMedVQA items (never trained on)
)

// PolicySummary is a policy stage's summary (and the baselines').
type PolicySummary struct {
	Name       string                  `json:"name"`
	TrainItems int                     `json:"train_items"`
	Train      *TrainStats             `json:"train,omitempty"`
	Eval       map[string]eval.Summary `json:"eval"` // benchmark → accuracy
	// ImageUse measures on the test split how far the policy's answers
	// move when each image is swapped for one of another modality
	// (eval.ImageSensitivity); nil for the baselines.
	ImageUse *eval.Sensitivity `json:"image_use,omitempty"`
	// Probe is the linear probe of the policy's encoder (the GRPO stage,
	// when the probe is on).
	Probe []ProbeResult `json:"probe,omitempty"`
}

// evalSets returns the benchmarks to evaluate, each capped at TestLimit
// items (a sample fixed by the build seed, the same for every run seed).
func (p *Pipeline) evalSets() (map[string][]data.Item, error) {
	return evalSetsFrom(p.stageDir(StageData), p.cfg.Data)
}

// evalSetsFrom returns the benchmarks to evaluate from a built benchmark
// in dir (the data stage's output) under the data config d.
func evalSetsFrom(dir string, d DataConfig) (map[string][]data.Item, error) {
	b, err := loadBenchmark(dir)
	if err != nil {
		return nil, err
	}
	sets := map[string][]data.Item{BenchTest: b.test}
	if len(b.heldOut) > 0 {
		sets[BenchHeldOut] = b.heldOut
	}
	if d.Real != "" {
		real, err := data.Load(d.Real)
		if err != nil {
			return nil, fmt.Errorf("%w: real items: %w", ErrData, err)
		}
		sets[BenchReal] = sample(real, d.RealLimit, d.BuildSeed)
	}
	for k, v := range sets {
		if k != BenchReal {
			sets[k] = sample(v, d.TestLimit, d.BuildSeed)
		}
	}
	return sets, nil
}

// sample returns n items chosen by seed (all of them when n is 0 or too
// large), in their original order.
func sample(items []data.Item, n int, seed uint64) []data.Item {
	if n <= 0 || n >= len(items) {
		return items
	}
	idx := rand.New(rand.NewPCG(seed, 0xe7a1)).Perm(len(items))[:n]
	keep := make([]bool, len(items))
	for _, i := range idx {
		keep[i] = true
	}
	out := make([]data.Item, 0, n)
	for i, it := range items {
		if keep[i] {
			out = append(out, it)
		}
	}
	return out
}

// evaluate runs an answerer over every benchmark of sets (evalSets).
func (p *Pipeline) evaluate(ctx context.Context, a eval.Answerer, label string, sets map[string][]data.Item) (map[string]eval.Summary, error) {
	out := map[string]eval.Summary{}
	for _, name := range []string{BenchTest, BenchHeldOut, BenchReal} {
		items, ok := sets[name]
		if !ok || len(items) == 0 {
			continue
		}
		res, err := eval.Evaluate(ctx, a, items, eval.Options{BatchSize: p.cfg.EvalBatch, Progress: p.out,
			Description: label + " on " + name})
		if err != nil {
			return nil, fmt.Errorf("evaluate %s on %s: %w", label, name, err)
		}
		fmt.Fprintln(p.out)
		out[name] = res.Summary
	}
	return out, nil
}

// evaluateBundle opens a VQA bundle's answerer, evaluates it on every
// benchmark and measures its image use on the test split.
func (p *Pipeline) evaluateBundle(ctx context.Context, bundle, label string) (_ map[string]eval.Summary, _ *eval.Sensitivity, err error) {
	a, release, err := p.be.Answerer(ctx, bundle)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", label, err)
	}
	defer func() {
		if rerr := release(); rerr != nil && err == nil {
			err = fmt.Errorf("release %s: %w", label, rerr)
		}
	}()
	sets, err := p.evalSets()
	if err != nil {
		return nil, nil, err
	}
	sums, err := p.evaluate(ctx, a, label, sets)
	if err != nil {
		return nil, nil, err
	}
	use, err := eval.ImageSensitivity(ctx, a, sets[BenchTest], eval.Options{BatchSize: p.cfg.EvalBatch, Progress: p.out,
		Description: label + " with swapped images"})
	fmt.Fprintln(p.out)
	switch {
	case errors.Is(err, eval.ErrNoSwap): // one modality: nothing to swap in
		return sums, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("image use of %s: %w", label, err)
	}
	return sums, &use, nil
}

// BaselineSummary holds the random and majority rows of one seed.
type BaselineSummary struct {
	Random   PolicySummary `json:"random"`
	Majority PolicySummary `json:"majority"`
}

// runBaselines evaluates the random guesser (seeded by the run seed) and
// the majority answer of the training split's labels.
func (p *Pipeline) runBaselines(ctx context.Context, _ string, s uint64) (any, error) {
	b, err := p.loadBenchmark()
	if err != nil {
		return nil, err
	}
	sets, err := p.evalSets()
	if err != nil {
		return nil, err
	}
	var sum BaselineSummary
	if sum.Random.Eval, err = p.evaluate(ctx, eval.Random{Seed: s}, "random", sets); err != nil {
		return nil, err
	}
	if sum.Majority.Eval, err = p.evaluate(ctx, eval.NewMajority(b.train), "majority", sets); err != nil {
		return nil, err
	}
	sum.Random.Name, sum.Majority.Name = "random", "majority"
	sum.Majority.TrainItems = len(b.train)
	return sum, nil
}

// policyData returns the examples of a policy row: the seed items, and
// for the unfiltered and filtered rows the parsed or the verified
// (accepted and passing Config.Verify) samples of the synthesis pass (when
// on) or else of every round.
func (p *Pipeline) policyData(s uint64, which string) ([]Example, error) {
	seedItems, _, err := p.loadSeed(s)
	if err != nil {
		return nil, err
	}
	ex := examplesOf(seedItems)
	if which == PolicySeed {
		return ex, nil
	}
	var stages []string
	if p.cfg.Synthesis.PerImage > 0 {
		stages = []string{seedStage(s, StageSynthesis)}
	} else {
		for k := 1; k <= p.cfg.Rounds; k++ {
			stages = append(stages, roundStage(s, k))
		}
	}
	for _, st := range stages {
		cands, err := LoadCandidates(filepath.Join(p.stageDir(st), fileCandidates))
		if err != nil {
			return nil, err
		}
		for _, c := range cands {
			if c.Err != "" || (which == PolicyFiltered && !c.Verified(p.cfg.Verify)) {
				continue
			}
			ex = append(ex, Example{Item: c.Item, Reasoning: c.Reasoning})
		}
	}
	return ex, nil
}

// runPolicySFT trains a VQA bundle by SFT on one row's data (with the
// grounding items when Config.PolicyGrounding is on), from the base or,
// with Config.PolicyFromSeed, the unfiltered and filtered rows from the
// seed-only row's policy, and evaluates it. TrainItems counts the row's
// own examples.
func (p *Pipeline) runPolicySFT(ctx context.Context, dir string, s uint64, which string) (any, error) {
	ex, err := p.policyData(s, which)
	if err != nil {
		return nil, err
	}
	if len(ex) == 0 {
		return nil, fmt.Errorf("%w: no training examples for %s", ErrData, which)
	}
	own := len(ex)
	if p.cfg.PolicyGrounding {
		b, err := p.loadBenchmark()
		if err != nil {
			return nil, err
		}
		ex = append(ex, examplesOf(GroundingItems(b.train, b.metadataTypes))...)
	}
	// The row's starting policy: the base (or a fresh bundle), or the
	// seed-only row's policy with PolicyFromSeed.
	base, done := filepath.Join(p.stageDir(seedStage(s, PolicySeed)), dirBundle), func() error { return nil }
	if which == PolicySeed || !p.cfg.PolicyFromSeed {
		if base, done, err = p.start(ctx, dir, RoleVQA, s); err != nil {
			return nil, err
		}
	}
	out := filepath.Join(dir, dirBundle)
	st, err := p.be.SFT(ctx, base, out, RoleVQA, ex, p.opts(p.cfg.PolicySFT, s))
	if err != nil {
		return nil, fmt.Errorf("policy SFT: %w", err)
	}
	if err := done(); err != nil {
		return nil, err
	}
	sum := PolicySummary{Name: which, TrainItems: own, Train: &st}
	if sum.Eval, sum.ImageUse, err = p.evaluateBundle(ctx, out, seedStage(s, which)); err != nil {
		return nil, err
	}
	return sum, nil
}

// runGRPO continues the filtered SFT policy with GRPO, rewarded by the
// last round's reward model and exact match, and evaluates it.
func (p *Pipeline) runGRPO(ctx context.Context, dir string, s uint64) (any, error) {
	ex, err := p.policyData(s, PolicyFiltered)
	if err != nil {
		return nil, err
	}
	items := make([]data.Item, len(ex))
	for i, e := range ex {
		items[i] = e.Item
	}
	base := filepath.Join(p.stageDir(seedStage(s, PolicyFiltered)), dirBundle)
	reward := filepath.Join(p.stageDir(roundStage(s, p.cfg.Rounds)), dirReward)
	out := filepath.Join(dir, dirBundle)
	o := p.cfg.GRPO
	o.TrainOptions = p.opts(o.TrainOptions, s)
	st, err := p.be.GRPO(ctx, base, out, reward, items, o)
	if err != nil {
		return nil, fmt.Errorf("GRPO: %w", err)
	}
	sum := PolicySummary{Name: PolicyGRPO, TrainItems: len(items), Train: &st}
	if sum.Eval, sum.ImageUse, err = p.evaluateBundle(ctx, out, seedStage(s, PolicyGRPO)); err != nil {
		return nil, err
	}
	if sum.Probe, err = p.probe(ctx, out); err != nil {
		return nil, err
	}
	return sum, nil
}
