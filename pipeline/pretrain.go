package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/eval"
)

// The shared base-model stages, run once for every seed.
const (
	// StagePretrainVision pretrains the vision encoder without labels
	// (when Pretrain.Vision is on): every role's bundle starts from it.
	StagePretrainVision = "pretrain-vision"
	// StagePretrain trains the VQA policy's base on real OmniMedVQA
	// questions (text), and on image-grounding items when
	// PretrainConfig.Grounding is on, and evaluates it.
	StagePretrain = "pretrain"
	// StagePretrainGenerator trains the generator's base on the same
	// questions.
	StagePretrainGenerator = "pretrain-generator"
	// StagePretrainReward trains the reward model's base on them, when
	// Pretrain.Reward is on.
	StagePretrainReward = "pretrain-reward"
)

// baseStage returns the stage that pretrains role's base.
func baseStage(role Role) string {
	switch role {
	case RoleVQA:
		return StagePretrain
	case RoleReward:
		return StagePretrainReward
	}
	return StagePretrainGenerator
}

// PolicyBase is the report row of the pretrained VQA base before any
// MedGR² data.
const PolicyBase = "policy-base"

// PretrainConfig makes the loop's starting models a pretrained base
// instead of random weights, as the paper starts from a pretrained VLM.
// The base learns, from real OmniMedVQA questions without their images,
// how a multiple-choice item reads and how an answer maps to its letter
// (VQA policy) and how an item is written (generator). It never sees the
// benchmark's labels: items of a held-out modality and items of any
// dataset in Data.Real are dropped, so the held-out and real benchmarks
// stay unseen.
type PretrainConfig struct {
	// Items is an OmniMedVQA-format item file (JSON array or JSONL); ""
	// disables pretraining (the loop starts from random bundles).
	Items string `json:"items"`
	// Limit caps the items used (a seeded sample); 0 means all.
	Limit int `json:"limit"`
	// VQA trains the policy base (fast-path answer letter); OptionShuffles
	// adds shuffled copies as for policy SFT.
	VQA TrainOptions `json:"vqa"`
	// Generator trains the generator base on the same items written in
	// models.SampleFormat.
	Generator TrainOptions `json:"generator"`
	// Grounding adds to the VQA base's data the image-grounding items of
	// the training images of the kept modalities (GroundingItems): which
	// modality produced the image, and its anatomy where the collection
	// has one. The answers are the collection's metadata, never a label.
	// Text-only pretraining teaches the policy to ignore its image tokens;
	// these items can only be answered by looking at the image.
	Grounding bool `json:"grounding"`
	// Reward, when its Epochs is above 0, trains a reward-model base on
	// the same items graded as in the loop (GradeSamples) without the
	// irrelevant level, which text alone cannot tell from an original: the
	// base learns whether the reasoning, the answer letter and the option
	// it names agree. With Epochs 0 the reward model starts from random
	// weights.
	Reward TrainOptions `json:"reward"`
	// Vision, when its Steps is above 0, first pretrains the vision
	// encoder without labels (VisionPretrainConfig); every role's bundle
	// then starts from that encoder.
	Vision VisionPretrainConfig `json:"vision"`
}

// PretrainSummary is the summary of each pretrain stage; each fills the
// fields of what it trains.
type PretrainSummary struct {
	Items     int                     `json:"items"`
	Grounding int                     `json:"grounding_items"` // image-grounding items the VQA base also trained on
	Dropped   map[string]int          `json:"dropped"`         // reason → items left out
	VQA       TrainStats              `json:"vqa"`
	Generator TrainStats              `json:"generator"`
	Reward    *TrainStats             `json:"reward,omitempty"`    // nil when the reward base is not pretrained
	Eval      map[string]eval.Summary `json:"eval"`                // the VQA base on each benchmark
	ImageUse  *eval.Sensitivity       `json:"image_use,omitempty"` // the VQA base's image use (PolicySummary.ImageUse)
	// Vision is the vision pretraining's training stats over VisionImages
	// images; nil when it is off.
	Vision       *TrainStats `json:"vision,omitempty"`
	VisionImages int         `json:"vision_images,omitempty"`
	// Probe holds the linear probe of the encoder at each point (the
	// Probe* names); nil when the probe is off.
	Probe map[string][]ProbeResult `json:"probe,omitempty"`
	// Seconds is the wall time of each part of the stage (the
	// PretrainPart* names).
	Seconds map[string]float64 `json:"seconds,omitempty"`
}

// Parts of the pretrain stage in PretrainSummary.Seconds, in run order.
const (
	PretrainPartVision    = "vision"     // vision pretraining with the probes around it
	PretrainPartVQA       = "vqa"        // the VQA base's SFT
	PretrainPartGenerator = "generator"  // the generator base's SFT
	PretrainPartReward    = "reward"     // the reward base's training, when on
	PretrainPartEval      = "evaluation" // the VQA base's evaluation, image use and probe
)

// pretrainEnabled reports whether the loop starts from a pretrained base.
func (p *Pipeline) pretrainEnabled() bool { return p.cfg.Pretrain.Items != "" }

// pretrained reports whether role starts from a pretrained base.
func (p *Pipeline) pretrained(role Role) bool {
	return p.pretrainEnabled() && (role != RoleReward || p.cfg.Pretrain.Reward.Epochs > 0)
}

// textGraded grades text-only examples for the reward base: every level
// but the irrelevant one, which needs the image to be told apart.
func textGraded(ex []Example, seed uint64) []Graded {
	var out []Graded
	for _, g := range GradeSamples(ex, seed) {
		if g.Level != LevelIrrelevant {
			out = append(out, g)
		}
	}
	return out
}

// pretrainItems loads the pretraining items, drops those of held-out
// modalities and of the real benchmark's datasets, and clears their image
// paths (the images are not available; the base learns from text).
func (p *Pipeline) pretrainItems() ([]Example, map[string]int, error) {
	c := p.cfg.Pretrain
	dropped := map[string]int{}
	items, err := data.Load(c.Items, data.SkipInvalid(func(*data.ItemError) { dropped["invalid"]++ }))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: pretrain items: %w", ErrData, err)
	}
	realSets := map[string]bool{}
	if p.cfg.Data.Real != "" {
		real, err := data.Load(p.cfg.Data.Real, data.SkipInvalid(nil))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: real items: %w", ErrData, err)
		}
		for _, it := range real {
			realSets[it.Dataset] = true
		}
	}
	holdout, err := p.holdoutModalities()
	if err != nil {
		return nil, nil, err
	}
	var kept []data.Item
	for _, it := range items {
		switch {
		case slices.Contains(holdout, it.ModalityType):
			dropped["held-out modality"]++
		case realSets[it.Dataset]:
			dropped["real-benchmark dataset"]++
		default:
			it.ImagePath = ""
			kept = append(kept, it)
		}
	}
	if c.Limit > 0 && len(kept) > c.Limit {
		dropped["limit"] = len(kept) - c.Limit
		kept = sample(kept, c.Limit, p.cfg.Data.BuildSeed)
	}
	if len(kept) == 0 {
		return nil, nil, fmt.Errorf("%w: no pretraining items left in %s", ErrData, c.Items)
	}
	return examplesOf(kept), dropped, nil
}

// GroundingPrefix starts the question id of every image-grounding item.
const GroundingPrefix = "grounding-"

// GroundingItems returns the image-grounding items of items: a copy of
// each item whose question type is one of its dataset's metadata types
// (builder.ManifestCollection.MetadataTypes: the modality question, and
// the anatomy question where the collection-wide anatomy answers it), with
// GroundingPrefix before its question id. Their answers are the
// collection's metadata, never an image's label, so they may be asked of
// every training image, pool included; they are phrased in the benchmark's
// own vocabulary (the real OmniMedVQA phrasings and modality names the
// builder draws from), and only the image tells their answers apart.
func GroundingItems(items []data.Item, metadataTypes map[string][]string) []data.Item {
	var out []data.Item
	for _, it := range items {
		if slices.Contains(metadataTypes[it.Dataset], it.QuestionType) {
			it.QuestionID = GroundingPrefix + it.QuestionID
			out = append(out, it)
		}
	}
	return out
}

// holdoutModalities returns the modalities the data stage held out.
func (p *Pipeline) holdoutModalities() ([]string, error) {
	var ds DataSummary
	if err := readJSON(filepath.Join(p.stageDir(StageData), SummaryFile), &ds); err != nil {
		return nil, err
	}
	return ds.Holdout, nil
}

// pretrainSeed seeds every base: one base for every run seed, like a
// published model.
const pretrainSeed = 0

// timer times the parts of a stage into a PretrainSummary's Seconds.
func (p *Pipeline) timer(sum *PretrainSummary) func(part string, f func() error) error {
	sum.Seconds = map[string]float64{}
	return func(part string, f func() error) error {
		t0 := p.now()
		err := f()
		sum.Seconds[part] = p.now().Sub(t0).Seconds()
		return err
	}
}

// runPretrainVision pretrains the vision encoder every role's bundle
// starts from (StagePretrainVision), with the linear probe before and
// after.
func (p *Pipeline) runPretrainVision(ctx context.Context, dir string) (any, error) {
	var sum PretrainSummary
	err := p.timer(&sum)(PretrainPartVision, func() error {
		_, err := p.pretrainVision(ctx, dir, pretrainSeed, &sum)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sum, nil
}

// runPretrain trains the VQA base (StagePretrain) from a random bundle
// with the pretrained encoder, and evaluates and probes it.
func (p *Pipeline) runPretrain(ctx context.Context, dir string) (any, error) {
	ex, dropped, err := p.pretrainItems()
	if err != nil {
		return nil, err
	}
	sum := PretrainSummary{Items: len(ex), Dropped: dropped}
	vqaEx := ex
	if p.cfg.Pretrain.Grounding {
		b, err := p.loadBenchmark()
		if err != nil {
			return nil, err
		}
		ground := GroundingItems(b.train, b.metadataTypes)
		if len(ground) == 0 {
			return nil, fmt.Errorf("%w: grounding: no training item has a question type its collection's metadata answers", ErrData)
		}
		sum.Grounding = len(ground)
		vqaEx = append(slices.Clone(ex), examplesOf(ground)...)
	}
	timed := p.timer(&sum)
	err = timed(PretrainPartVQA, func() error {
		return p.trainBase(ctx, dir, RoleVQA, &sum.VQA, func(from, out string) (TrainStats, error) {
			return p.be.SFT(ctx, from, out, RoleVQA, vqaEx, p.opts(p.cfg.Pretrain.VQA, pretrainSeed))
		})
	})
	if err != nil {
		return nil, err
	}
	err = timed(PretrainPartEval, func() error {
		var err error
		if sum.Eval, sum.ImageUse, err = p.evaluateBundle(ctx, filepath.Join(dir, string(RoleVQA)), StagePretrain); err != nil {
			return err
		}
		r, err := p.probe(ctx, filepath.Join(dir, string(RoleVQA)))
		if err != nil || r == nil {
			return err
		}
		sum.Probe = map[string][]ProbeResult{ProbeBase: r}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sum, nil
}

// runPretrainBase trains the generator's base (StagePretrainGenerator)
// or the reward model's (StagePretrainReward, on the pretraining items
// graded without the irrelevant level: textGraded).
func (p *Pipeline) runPretrainBase(ctx context.Context, dir string, role Role) (any, error) {
	ex, dropped, err := p.pretrainItems()
	if err != nil {
		return nil, err
	}
	sum := PretrainSummary{Items: len(ex), Dropped: dropped}
	stats, part := &sum.Generator, PretrainPartGenerator
	train := func(from, out string) (TrainStats, error) {
		return p.be.SFT(ctx, from, out, RoleGenerator, ex, p.opts(p.cfg.Pretrain.Generator, pretrainSeed))
	}
	if role == RoleReward {
		sum.Reward = &TrainStats{}
		stats, part = sum.Reward, PretrainPartReward
		train = func(from, out string) (TrainStats, error) {
			return p.be.TrainReward(ctx, from, out, textGraded(ex, pretrainSeed), p.opts(p.cfg.Pretrain.Reward, pretrainSeed))
		}
	}
	err = p.timer(&sum)(part, func() error { return p.trainBase(ctx, dir, role, stats, train) })
	if err != nil {
		return nil, err
	}
	return sum, nil
}

// trainBase trains role's base into dir/role from a fresh bundle with the
// pretrained encoder, storing its stats.
func (p *Pipeline) trainBase(ctx context.Context, dir string, role Role, stats *TrainStats,
	train func(from, out string) (TrainStats, error)) error {
	from, err := p.freshWithVision(ctx, dir, role, pretrainSeed, p.pretrainedVision())
	if err != nil {
		return err
	}
	if *stats, err = train(from, filepath.Join(dir, string(role))); err != nil {
		return fmt.Errorf("pretrain %s: %w", role, err)
	}
	return removeAll(from)
}

// start returns the bundle a role's training starts from: the pretrained
// base when the role has one (VQA and generator whenever pretraining is
// on, the reward model when Pretrain.Reward trains it), otherwise a fresh
// random bundle written into dir. done removes what start wrote.
func (p *Pipeline) start(ctx context.Context, dir string, role Role, seed uint64) (path string, done func() error, err error) {
	if p.pretrained(role) {
		base := filepath.Join(p.stageDir(baseStage(role)), string(role))
		if _, err := os.Stat(base); err != nil {
			return "", nil, fmt.Errorf("%w: pretrained %s base: %w", ErrData, role, err)
		}
		return base, func() error { return nil }, nil
	}
	path, err = p.freshWithVision(ctx, dir, role, seed, p.pretrainedVision())
	if err != nil {
		return "", nil, err
	}
	return path, func() error { return removeAll(path) }, nil
}
