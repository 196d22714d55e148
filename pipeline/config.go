package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/medgr2/medgr2/models"
)

// Config is a pipeline run, read from JSON (see configs/pipeline.json).
// Relative paths are resolved against the folder of the config file.
// Every zero field has the default its comment states.
type Config struct {
	// OutDir receives every stage's folder, the state file, metrics and
	// the report; default "runs/pipeline".
	OutDir string `json:"out_dir"`
	// Seeds are the run seeds: each seed runs the whole loop (seed set,
	// models, rounds, policies); the report gives mean ± spread. Default [1].
	Seeds []uint64 `json:"seeds"`
	// Data says which benchmark to build and what to evaluate on.
	Data DataConfig `json:"data"`
	// Model sizes the models and the tokenizer.
	Model ModelConfig `json:"model"`
	// SeedFraction is the share of training images whose labelled items
	// form the seed set (the scarce expert data); default 0.05.
	SeedFraction float64 `json:"seed_fraction"`
	// Rounds is the number of co-development rounds; default 3.
	Rounds int `json:"rounds"`
	// Generate controls the generator's sampling on the pool.
	Generate GenerateConfig `json:"generate"`
	// Filter controls which generated samples are accepted.
	Filter FilterConfig `json:"filter"`
	// Synthesis, when PerImage > 0, adds a last generation pass after the
	// rounds: the final generator writes the policies' training samples
	// over the pool, scored and filtered by the final reward model. When
	// off, the policies train on the rounds' samples.
	Synthesis SynthesisConfig `json:"synthesis"`
	// Verify names the check that decides which accepted samples the
	// round retrains on: "coherent" (default) keeps, as the reward model's
	// new originals and the generator's SFT data, the accepted samples
	// whose reasoning names the option their letter chooses (Coherent), and
	// turns the others (the reward model's false positives) into
	// incoherent hard negatives; "none" retrains on every accepted sample.
	// The check reads only the sample's text, never a label, and never
	// changes which samples the filter accepts.
	Verify string `json:"verify"`
	// GeneratorSFT, RewardTrain and PolicySFT train the three models.
	GeneratorSFT TrainOptions `json:"generator_sft"`
	RewardTrain  TrainOptions `json:"reward_train"`
	PolicySFT    TrainOptions `json:"policy_sft"`
	// PolicyGrounding adds the image-grounding items of the training
	// images (GroundingItems, as Pretrain.Grounding) to each policy's SFT
	// data, seed row included, so SFT on samples that never need the
	// image does not teach the policy to ignore it again.
	PolicyGrounding bool `json:"policy_grounding"`
	// PolicyFromSeed starts the unfiltered and filtered rows from the
	// seed-only row's policy (SFT on the labelled seed items, and the
	// grounding items with PolicyGrounding) instead of the pretrained
	// base: the policy first learns from the seed set, whose questions
	// need the image, then from the generated samples. The two rows still
	// differ in their generated data only. Off, every row starts from the
	// base.
	PolicyFromSeed bool `json:"policy_from_seed"`
	// RoundGeneratorSFT and RoundRewardTrain train the generator and the
	// reward model in rounds 1…Rounds, continuing from the previous
	// round's models; a zero value means the bootstrap settings.
	RoundGeneratorSFT TrainOptions `json:"round_generator_sft"`
	RoundRewardTrain  TrainOptions `json:"round_reward_train"`
	// GRPO trains the policy after SFT on the filtered samples.
	GRPO GRPOOptions `json:"grpo"`
	// EvalBatch is the evaluation batch size; default 32.
	EvalBatch int `json:"eval_batch"`
	// Pretrain, when Items is set, trains a shared text-only base for the
	// VQA policy and the generator before the loop (see PretrainConfig).
	Pretrain PretrainConfig `json:"pretrain"`
	// Probe, when its Limit is above 0, measures how much label
	// information the vision encoder's features carry (a linear probe per
	// labelled collection): for the random encoder, after vision
	// pretraining, for the pretrained base and for each policy after GRPO.
	Probe ProbeConfig `json:"probe"`
}

// DataConfig selects the benchmark the pipeline builds and evaluates on.
type DataConfig struct {
	// Collections are labelled image collection folders (collection.json
	// + labels.jsonl). Required.
	Collections []string `json:"collections"`
	// Reference is a real OmniMedVQA QA file for phrasings and
	// distractors (data/builder). Required.
	Reference string `json:"reference"`
	// Real is the real OmniMedVQA item file evaluated separately (never
	// trained on); "" skips that benchmark.
	Real string `json:"real"`
	// RealLimit caps the real items evaluated (a seeded sample); 0 means all.
	RealLimit int `json:"real_limit"`
	// ImageSize is the side of the benchmark images; default 56.
	ImageSize int `json:"image_size"`
	// MaxPerCollection caps the images per collection; 0 means all.
	MaxPerCollection int `json:"max_per_collection"`
	// Holdout names the modalities held out of training (evaluated as
	// "held-out modalities"); empty lets the builder choose one.
	Holdout []string `json:"holdout"`
	// TestLimit caps the test items evaluated per benchmark (a seeded
	// sample); 0 means all.
	TestLimit int `json:"test_limit"`
	// BuildSeed is the benchmark build seed; default 1.
	BuildSeed uint64 `json:"build_seed"`
}

// ModelConfig sizes the tokenizer and the models.
type ModelConfig struct {
	// VocabSize is the BPE vocabulary trained on the corpus; default 1000.
	VocabSize int `json:"vocab_size"`
	// Corpus lists extra text files (JSON/JSONL items or plain text) for
	// the tokenizer besides the benchmark's own items.
	Corpus []string `json:"corpus"`
	// HiddenSize, IntermediateSize and Layers, when not 0, override
	// models.DefaultConfig's decoder width (128), SwiGLU width (352) and
	// depth (4); see Arch.
	HiddenSize       int `json:"hidden_size"`
	IntermediateSize int `json:"intermediate_size"`
	Layers           int `json:"layers"`
	// VisionWidth and VisionDepth, when not 0, override the vision
	// encoder's width (96) and depth (2).
	VisionWidth int `json:"vision_width"`
	VisionDepth int `json:"vision_depth"`
	// MaxPixels, when above 0, is the new bundles' image processor
	// max_pixels (models.ExportOptions.MaxPixels): data.image_size² makes
	// every image, trained on, evaluated or served, the benchmark's
	// resolution. 0 keeps Qwen2-VL's default (200,704), under which the
	// pretraining's and the real items' larger images keep up to 256
	// tokens; docs/2026-12-07-pipeline-step-budget.md measures both.
	MaxPixels int `json:"max_pixels,omitempty"`
}

// Arch returns the architecture of the loop's models for a vocabulary:
// models.DefaultConfig with the config's overrides.
func (m ModelConfig) Arch(vocab int) models.ArchConfig {
	c := models.DefaultConfig(vocab)
	if m.HiddenSize > 0 {
		c.HiddenSize = m.HiddenSize
	}
	if m.IntermediateSize > 0 {
		c.IntermediateSize = m.IntermediateSize
	}
	if m.Layers > 0 {
		c.NumLayers = m.Layers
	}
	if m.VisionWidth > 0 {
		c.Vision.EmbedDim = m.VisionWidth
	}
	if m.VisionDepth > 0 {
		c.Vision.Depth = m.VisionDepth
	}
	if half := c.HeadDim() / 2; half != 4+6+6 && half >= 4 {
		t := half / 4 // Qwen2-VL's 1:1.5:1.5 split of the rotary pairs
		c.MRopeSection = []int{t, (half - t) / 2, half - t - (half-t)/2}
	}
	return c
}

// Quick shrinks the run to a CI-sized end-to-end pass: one seed, two
// rounds, 40 images per collection, 24 pool images per round (and for the
// synthesis pass, when on), one sample each, at most 400 pretraining items, a third of every epoch count,
// at most 30 vision pretraining steps, a 40-image probe, and evaluation on
// 60-item samples of the benchmarks. Output goes to OutDir+"-quick".
func (c *Config) Quick() {
	c.OutDir += "-quick"
	c.Seeds = c.Seeds[:1]
	c.Rounds = min(c.Rounds, 2)
	c.Data.MaxPerCollection = 40
	c.Data.TestLimit, c.Data.RealLimit = 60, 60
	c.SeedFraction = max(c.SeedFraction, 0.2)
	c.Generate.PoolLimit, c.Generate.PerImage = 24, 1
	if c.Synthesis.PerImage > 0 {
		c.Synthesis.PoolLimit, c.Synthesis.PerImage = 24, 1
	}
	if c.Pretrain.Limit == 0 || c.Pretrain.Limit > 400 {
		c.Pretrain.Limit = 400
	}
	c.Pretrain.Vision.Steps = min(c.Pretrain.Vision.Steps, 30)
	c.Probe.Limit = min(c.Probe.Limit, 40)
	for _, t := range []*TrainOptions{&c.GeneratorSFT, &c.RewardTrain, &c.PolicySFT, &c.GRPO.TrainOptions,
		&c.RoundGeneratorSFT, &c.RoundRewardTrain, &c.Pretrain.VQA, &c.Pretrain.Generator, &c.Pretrain.Reward} {
		if t.Epochs > 1 {
			t.Epochs = max(1, t.Epochs/3)
		}
		if t.MaxSteps > 0 {
			t.MaxSteps = max(1, t.MaxSteps/3)
		}
	}
}

// GenerateConfig controls sampling on the unlabelled pool.
type GenerateConfig struct {
	// PerImage is the number of samples drawn per pool image; default 2.
	PerImage int `json:"per_image"`
	// PoolLimit caps the pool images used per round (a seeded sample);
	// 0 means all.
	PoolLimit int `json:"pool_limit"`
	// Temperature of the generator; default 0.8.
	Temperature float64 `json:"temperature"`
	// TopK keeps the k most likely tokens; 0 keeps all.
	TopK int `json:"top_k"`
	// AnswerTemperature, when set, is the temperature of the answer
	// letter alone (0: the generator's most likely letter), so questions
	// and reasoning stay varied while the letter follows the reasoning as
	// well as the generator can; unset samples it at Temperature.
	AnswerTemperature *float64 `json:"answer_temperature"`
	// MaxNewTokens caps each sample; default 96.
	MaxNewTokens int `json:"max_new_tokens"`
}

// SynthesisConfig sizes the synthesis pass (Config.Synthesis). It samples
// with Generate's temperatures and budget and accepts with Filter.
type SynthesisConfig struct {
	// PerImage is the number of samples drawn per pool image; 0 (the
	// default) turns the pass off.
	PerImage int `json:"per_image"`
	// PoolLimit caps the pool images used (a seeded sample); 0 means all.
	PoolLimit int `json:"pool_limit"`
	// Filter, when set, replaces Config.Filter for this pass: the rounds
	// need a ranking rule while the reward model's scale settles, the
	// final reward model can be trusted with a threshold.
	Filter *FilterConfig `json:"filter"`
}

// FilterConfig says which scored samples are accepted.
type FilterConfig struct {
	// Threshold τ: samples scoring at least τ are accepted; default 5
	// (between the perturbed level 6 and the incoherent level 0 of the
	// paper's scale, nearer the top).
	Threshold *float64 `json:"threshold"`
	// TopK, when > 0, accepts the k best-scoring samples instead of using
	// the threshold.
	TopK int `json:"top_k"`
	// TopFraction, when > 0 (and TopK is 0), accepts the best
	// ⌈TopFraction·parsed⌉ samples instead of using the threshold: a
	// ranking rule that needs no calibrated score scale.
	TopFraction float64 `json:"top_fraction"`
	// MaxTemplateShare caps the share of accepted samples that one
	// question template (the question text with its options removed,
	// normalised) may take; default 0.5; 1 disables the rule.
	MaxTemplateShare float64 `json:"max_template_share"`
}

// defaults fills the filter's zero fields with their documented defaults.
func (f *FilterConfig) defaults() {
	if f.Threshold == nil {
		t := 5.0
		f.Threshold = &t
	}
	if f.MaxTemplateShare == 0 {
		f.MaxTemplateShare = 0.5
	}
}

// valid reports whether the filter's settings are in range.
func (f *FilterConfig) valid() bool {
	return f.TopK >= 0 && f.TopFraction >= 0 && f.TopFraction <= 1 && f.MaxTemplateShare > 0 && f.MaxTemplateShare <= 1
}

// defaults fills every zero field with its documented default.
func (c *Config) defaults() {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	deff := func(p *float64, v float64) {
		if *p == 0 {
			*p = v
		}
	}
	if c.OutDir == "" {
		c.OutDir = "runs/pipeline"
	}
	if len(c.Seeds) == 0 {
		c.Seeds = []uint64{1}
	}
	def(&c.Data.ImageSize, 56)
	if c.Data.BuildSeed == 0 {
		c.Data.BuildSeed = 1
	}
	def(&c.Model.VocabSize, 1000)
	deff(&c.SeedFraction, 0.05)
	def(&c.Rounds, 3)
	def(&c.Generate.PerImage, 2)
	deff(&c.Generate.Temperature, 0.8)
	def(&c.Generate.MaxNewTokens, 96)
	c.Filter.defaults()
	if c.Synthesis.Filter != nil {
		c.Synthesis.Filter.defaults()
	}
	if c.Verify == "" {
		c.Verify = VerifyCoherent
	}
	if c.RoundGeneratorSFT.isZero() {
		c.RoundGeneratorSFT = c.GeneratorSFT
	}
	if c.RoundRewardTrain.isZero() {
		c.RoundRewardTrain = c.RewardTrain
	}
	for _, t := range []*TrainOptions{&c.GeneratorSFT, &c.RewardTrain, &c.PolicySFT, &c.GRPO.TrainOptions,
		&c.RoundGeneratorSFT, &c.RoundRewardTrain, &c.Pretrain.VQA, &c.Pretrain.Generator, &c.Pretrain.Reward} {
		if t == &c.Pretrain.Reward && t.Epochs == 0 {
			continue // no reward base: the reward model starts fresh
		}
		def(&t.Epochs, 1)
		def(&t.BatchSize, 8)
		deff(&t.LearningRate, 1e-3)
	}
	def(&c.GRPO.Group, 4)
	deff(&c.GRPO.RewardWeight, 0.8)
	deff(&c.GRPO.MatchWeight, 0.2)
	deff(&c.GRPO.Temperature, 1)
	def(&c.GRPO.MaxNewTokens, 48)
	def(&c.EvalBatch, 32)
}

// Validate reports the first setting out of range, wrapping ErrConfig.
func (c *Config) Validate() error {
	switch {
	case len(c.Data.Collections) == 0:
		return configError("data.collections is empty")
	case c.Data.Reference == "":
		return configError("data.reference is required")
	case c.SeedFraction <= 0 || c.SeedFraction > 1:
		return configError("seed_fraction %g is not in (0, 1]", c.SeedFraction)
	case c.Rounds < 0 || c.Rounds > 20:
		return configError("rounds %d is not in [0, 20]", c.Rounds)
	case c.Generate.PerImage < 1 || c.Generate.Temperature < 0 || c.Generate.MaxNewTokens < 8 ||
		c.Generate.AnswerTemperature != nil && *c.Generate.AnswerTemperature < 0:
		return configError("generate: per_image ≥ 1, temperature and answer_temperature ≥ 0 and max_new_tokens ≥ 8 are required")
	case c.Synthesis.PerImage < 0 || c.Synthesis.PoolLimit < 0:
		return configError("synthesis: per_image and pool_limit must be ≥ 0")
	case !c.Filter.valid() || c.Synthesis.Filter != nil && !c.Synthesis.Filter.valid():
		return configError("filter: top_k ≥ 0, top_fraction and max_template_share in (0, 1] are required")
	case c.Model.HiddenSize < 0 || c.Model.IntermediateSize < 0 || c.Model.Layers < 0 || c.Model.VisionWidth < 0 || c.Model.VisionDepth < 0 ||
		c.Model.MaxPixels < 0:
		return configError("model sizes must be ≥ 0")
	case c.Verify != VerifyCoherent && c.Verify != VerifyNone:
		return configError("verify %q is not %q or %q", c.Verify, VerifyCoherent, VerifyNone)
	case c.Pretrain.Limit < 0:
		return configError("pretrain.limit %d < 0", c.Pretrain.Limit)
	case c.Pretrain.Vision.Steps < 0 || c.Pretrain.Vision.Pairs < 0 || c.Pretrain.Vision.LearningRate < 0 || c.Pretrain.Vision.Temperature < 0:
		return configError("pretrain.vision: steps, pairs, learning_rate and temperature must be ≥ 0")
	case c.Pretrain.Vision.Steps > 0 && c.Pretrain.Items == "":
		return configError("pretrain.vision needs the pretrain stage (pretrain.items)")
	case c.Probe.Limit < 0:
		return configError("probe.limit %d < 0", c.Probe.Limit)
	case c.GRPO.Group < 2:
		return configError("grpo.group %d < 2 (advantages need a group)", c.GRPO.Group)
	case c.GRPO.RewardWeight < 0 || c.GRPO.MatchWeight < 0 || c.GRPO.FormatWeight < 0 ||
		c.GRPO.RewardWeight+c.GRPO.MatchWeight+c.GRPO.FormatWeight == 0:
		return configError("grpo reward weights must be ≥ 0 and not all 0")
	}
	for name, t := range map[string]TrainOptions{"generator_sft": c.GeneratorSFT, "reward_train": c.RewardTrain,
		"policy_sft": c.PolicySFT, "grpo": c.GRPO.TrainOptions, "round_generator_sft": c.RoundGeneratorSFT,
		"round_reward_train": c.RoundRewardTrain, "pretrain.vqa": c.Pretrain.VQA, "pretrain.generator": c.Pretrain.Generator,
		"pretrain.reward": c.Pretrain.Reward} {
		if name == "pretrain.reward" && t.isZero() {
			continue
		}
		if t.Epochs < 1 || t.BatchSize < 1 || t.LearningRate <= 0 {
			return configError("%s: epochs, batch_size and learning_rate must be positive", name)
		}
		if t.OptionShuffles < 0 || t.MaxSteps < 0 {
			return configError("%s: option_shuffles %d and max_steps %d must be ≥ 0", name, t.OptionShuffles, t.MaxSteps)
		}
		if t.AnswerWeight < 0 || math.IsNaN(t.AnswerWeight) || math.IsInf(t.AnswerWeight, 0) {
			return configError("%s: answer_weight %v is not a finite value ≥ 0", name, t.AnswerWeight)
		}
	}
	if err := c.Model.Arch(c.Model.VocabSize).Validate(); err != nil {
		return fmt.Errorf("%w: model: %w", ErrConfig, err)
	}
	seen := map[uint64]bool{}
	for _, s := range c.Seeds {
		if seen[s] {
			return configError("seed %d repeated", s)
		}
		seen[s] = true
	}
	return nil
}

// LoadConfig reads a JSON config (unknown fields are errors), resolves
// relative paths against the file's folder, fills defaults and validates.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	c.resolve(filepath.Dir(path))
	c.defaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// Normalize fills defaults and validates a Config built in code; paths
// stay as given.
func (c *Config) Normalize() error {
	c.defaults()
	return c.Validate()
}

// resolve makes the config's relative paths relative to dir.
func (c *Config) resolve(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.OutDir)
	abs(&c.Data.Reference)
	abs(&c.Data.Real)
	abs(&c.Pretrain.Items)
	for i := range c.Data.Collections {
		abs(&c.Data.Collections[i])
	}
	for i := range c.Model.Corpus {
		abs(&c.Model.Corpus[i])
	}
}

// hashOf returns a short stable hash of the JSON encoding of parts.
func hashOf(parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		b, err := json.Marshal(p)
		if err != nil { // plain data always marshals; NaN cannot come from JSON
			b = []byte(fmt.Sprintf("%v", p))
		}
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
