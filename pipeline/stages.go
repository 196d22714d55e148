package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/builder"
	"github.com/medgr2/medgr2/tokenizer"
)

// Stage names shared by every seed.
const (
	StageData      = "data"
	StageTokenizer = "tokenizer"
	StageReport    = "report"
	// StageSynthesis is the per-seed synthesis pass (Config.Synthesis).
	StageSynthesis = "synthesis"
)

// Policy rows of the report, in order.
const (
	PolicySeed       = "policy-seed"       // SFT on the seed items only
	PolicyUnfiltered = "policy-unfiltered" // SFT on seed + every parsed generated item (the synthesis pass's when on)
	PolicyFiltered   = "policy-filtered"   // SFT on seed + reward-filtered items (the synthesis pass's when on)
	PolicyGRPO       = "policy-grpo"       // policy-filtered, then GRPO with the hybrid reward
)

// Files inside stage folders.
const (
	fileTokenizer  = "tokenizer.json"
	fileSeed       = "seed.jsonl"
	filePool       = "pool.json"
	fileCandidates = "candidates.jsonl"
	dirGenerator   = "generator"
	dirReward      = "reward"
	dirBundle      = "bundle"
)

// seedStage returns the name of a per-seed stage.
func seedStage(seed uint64, name string) string { return fmt.Sprintf("s%d/%s", seed, name) }

// roundStage returns the name of round k's stage (round 0 is the bootstrap).
func roundStage(seed uint64, k int) string { return seedStage(seed, fmt.Sprintf("round-%d", k)) }

// plan lists every stage in run order.
func (p *Pipeline) plan() []stage {
	c := p.cfg
	dataConf := c.Data
	dataConf.Real, dataConf.RealLimit, dataConf.TestLimit = "", 0, 0
	stages := []stage{
		{name: StageData, conf: dataConf, code: []string{CodeBenchmark}, run: p.runData},
		{name: StageTokenizer, deps: []string{StageData}, conf: c.Model, code: []string{CodeLoop, CodeBackend}, run: p.runTokenizer},
	}
	var reportDeps []string
	if p.pretrainEnabled() {
		// The bases train at once when Jobs allows.
		conf, code := []any{c.Pretrain, p.evalConf()}, []string{CodeLoop, CodeBackend, CodeBenchmark}
		deps := []string{StageData, StageTokenizer}
		if p.visionEnabled() {
			stages = append(stages, stage{name: StagePretrainVision, deps: deps, conf: conf, code: code, run: p.runPretrainVision})
			deps = append(slices.Clone(deps), StagePretrainVision)
			reportDeps = append(reportDeps, StagePretrainVision)
		}
		stages = append(stages,
			stage{name: StagePretrain, deps: deps, conf: conf, code: code, run: p.runPretrain},
			stage{name: StagePretrainGenerator, deps: deps, conf: conf, code: code,
				run: func(ctx context.Context, dir string) (any, error) { return p.runPretrainBase(ctx, dir, RoleGenerator) }})
		reportDeps = append(reportDeps, StagePretrain, StagePretrainGenerator)
		if p.pretrained(RoleReward) {
			stages = append(stages, stage{name: StagePretrainReward, deps: deps, conf: conf, code: code,
				run: func(ctx context.Context, dir string) (any, error) { return p.runPretrainBase(ctx, dir, RoleReward) }})
			reportDeps = append(reportDeps, StagePretrainReward)
		}
	}
	for _, s := range c.Seeds {
		stages = append(stages, p.seedStages(s)...)
		if c.Synthesis.PerImage > 0 {
			reportDeps = append(reportDeps, seedStage(s, StageSynthesis))
		}
		reportDeps = append(reportDeps, seedStage(s, "baselines"), seedStage(s, PolicySeed),
			seedStage(s, PolicyUnfiltered), seedStage(s, PolicyFiltered), seedStage(s, PolicyGRPO))
		for k := 1; k <= c.Rounds; k++ {
			reportDeps = append(reportDeps, roundStage(s, k))
		}
	}
	stages = append(stages, stage{name: StageReport, deps: reportDeps, conf: p.evalConf(), code: []string{CodeLoop}, run: p.runReport})
	return stages
}

// seedStages lists one seed's stages: seed set, bootstrap, rounds, the
// synthesis pass (when on), baselines and the four policies.
func (p *Pipeline) seedStages(s uint64) []stage {
	c := p.cfg
	evalConf := p.evalConf()
	name := func(n string) string { return seedStage(s, n) }
	// base lists the stages the policies' starting weights come from,
	// genBase those of the generator and the reward model.
	base := []string{StageTokenizer}
	if p.visionEnabled() {
		base = append(base, StagePretrainVision)
	}
	genBase := slices.Clone(base)
	if p.pretrainEnabled() {
		base = append(base, StagePretrain)
		genBase = append(genBase, StagePretrainGenerator)
	}
	if p.pretrained(RoleReward) {
		genBase = append(genBase, StagePretrainReward)
	}
	out := []stage{
		{name: name("seed"), deps: []string{StageData}, conf: []any{c.SeedFraction, s}, code: []string{CodeLoop},
			run: func(ctx context.Context, dir string) (any, error) { return p.runSeed(ctx, dir, s) }},
		{name: roundStage(s, 0), deps: append(genBase, name("seed")),
			conf: []any{c.GeneratorSFT, c.RewardTrain, s}, code: []string{CodeLoop, CodeBackend},
			run: func(ctx context.Context, dir string) (any, error) { return p.runBootstrap(ctx, dir, s) }},
	}
	for k := 1; k <= c.Rounds; k++ {
		out = append(out, stage{name: roundStage(s, k), deps: []string{name("seed"), roundStage(s, k-1)},
			conf: []any{c.Generate, c.Filter, c.Verify, c.RoundGeneratorSFT, c.RoundRewardTrain, s, k}, code: []string{CodeLoop, CodeBackend},
			run: func(ctx context.Context, dir string) (any, error) { return p.runRound(ctx, dir, s, k) }})
	}
	last := roundStage(s, c.Rounds)
	dataDeps := append(slices.Clone(base), name("seed"))
	for k := 1; k <= c.Rounds; k++ {
		dataDeps = append(dataDeps, roundStage(s, k))
	}
	if c.Synthesis.PerImage > 0 {
		out = append(out, stage{name: name(StageSynthesis), deps: []string{name("seed"), last},
			conf: []any{c.Synthesis, c.Generate, c.Filter, c.Verify, s}, code: []string{CodeLoop, CodeBackend},
			run: func(ctx context.Context, dir string) (any, error) { return p.runSynthesis(ctx, dir, s) }})
		dataDeps = append(dataDeps, name(StageSynthesis))
	}
	rowDeps := dataDeps // the unfiltered and filtered rows
	if c.PolicyFromSeed {
		rowDeps = append(slices.Clone(dataDeps), name(PolicySeed))
	}
	out = append(out,
		stage{name: name("baselines"), deps: []string{StageData}, conf: []any{evalConf, s}, code: []string{CodeLoop, CodeBenchmark},
			run: func(ctx context.Context, dir string) (any, error) { return p.runBaselines(ctx, dir, s) }},
		stage{name: name(PolicySeed), deps: append(slices.Clone(base), name("seed")), conf: []any{c.PolicySFT, c.PolicyGrounding, evalConf, s}, code: []string{CodeLoop, CodeBackend, CodeBenchmark},
			run: func(ctx context.Context, dir string) (any, error) { return p.runPolicySFT(ctx, dir, s, PolicySeed) }},
		stage{name: name(PolicyUnfiltered), deps: rowDeps, conf: []any{c.PolicySFT, c.PolicyGrounding, c.PolicyFromSeed, evalConf, s}, code: []string{CodeLoop, CodeBackend, CodeBenchmark},
			run: func(ctx context.Context, dir string) (any, error) {
				return p.runPolicySFT(ctx, dir, s, PolicyUnfiltered)
			}},
		stage{name: name(PolicyFiltered), deps: rowDeps, conf: []any{c.PolicySFT, c.PolicyGrounding, c.PolicyFromSeed, c.Verify, evalConf, s}, code: []string{CodeLoop, CodeBackend, CodeBenchmark},
			run: func(ctx context.Context, dir string) (any, error) { return p.runPolicySFT(ctx, dir, s, PolicyFiltered) }},
		stage{name: name(PolicyGRPO), deps: []string{name(PolicyFiltered), last}, conf: []any{c.GRPO, evalConf, s}, code: []string{CodeLoop, CodeBackend, CodeBenchmark},
			run: func(ctx context.Context, dir string) (any, error) { return p.runGRPO(ctx, dir, s) }},
	)
	return out
}

// evalConf is what an evaluation's results depend on besides the model.
func (p *Pipeline) evalConf() any {
	c := p.cfg
	return struct {
		Real                      string
		RealLimit, TestLimit, Bat int
		Probe                     ProbeConfig
	}{c.Data.Real, c.Data.RealLimit, c.Data.TestLimit, c.EvalBatch, c.Probe}
}

// DataSummary is the data stage's summary.
type DataSummary struct {
	Files   map[string]int `json:"files"`
	Holdout []string       `json:"holdout_modalities"`
}

// runData builds the benchmark with data/builder.
func (p *Pipeline) runData(ctx context.Context, dir string) (any, error) {
	m, err := buildBenchmarkData(ctx, p.cfg.Data, dir)
	if err != nil {
		return nil, err
	}
	return DataSummary{Files: m.Files, Holdout: m.Holdout}, nil
}

// buildBenchmarkData builds the benchmark of d into dir.
func buildBenchmarkData(ctx context.Context, d DataConfig, dir string) (*builder.Manifest, error) {
	m, err := builder.Build(ctx, builder.Config{Collections: d.Collections, Reference: d.Reference, OutDir: dir,
		ImageSize: d.ImageSize, Seed: d.BuildSeed, MaxPerCollection: d.MaxPerCollection, Holdout: d.Holdout})
	if err != nil {
		return nil, fmt.Errorf("build benchmark: %w", err)
	}
	return m, nil
}

// benchmark is the built benchmark as the loop reads it.
type benchmark struct {
	train   []data.Item // training split of the kept modalities (seed set + pool)
	all     []data.Item // every item (for measuring true accuracy)
	test    []data.Item // test split of the kept modalities
	heldOut []data.Item // every item of the held-out modalities
	holdout []string
	// metadataTypes maps each dataset to the question types its
	// collection's metadata answers (the manifest's MetadataTypes).
	metadataTypes map[string][]string
}

// loadBenchmark reads the data stage's outputs.
func (p *Pipeline) loadBenchmark() (*benchmark, error) { return loadBenchmark(p.stageDir(StageData)) }

// loadBenchmark reads a built benchmark in dir.
func loadBenchmark(dir string) (*benchmark, error) {
	var b benchmark
	var err error
	if b.train, err = data.Load(filepath.Join(dir, builder.FileXTrain)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrData, err)
	}
	if b.all, err = data.Load(filepath.Join(dir, builder.FileAll)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrData, err)
	}
	var m builder.Manifest
	if err := readJSON(filepath.Join(dir, builder.FileManifest), &m); err != nil {
		return nil, err
	}
	b.holdout = m.Holdout
	b.metadataTypes = map[string][]string{}
	for _, c := range m.Collections {
		b.metadataTypes[c.Name] = c.MetadataTypes
	}
	if len(m.Holdout) > 0 {
		if b.heldOut, err = data.Load(filepath.Join(dir, builder.FileXTest)); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrData, err)
		}
	}
	test, err := data.Load(filepath.Join(dir, builder.SplitFile(data.SplitTest)))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrData, err)
	}
	held := map[string]bool{}
	for _, h := range m.Holdout {
		held[h] = true
	}
	for _, it := range test {
		if !held[it.ModalityType] {
			b.test = append(b.test, it)
		}
	}
	return &b, nil
}

// runTokenizer trains the shared tokenizer on the benchmark's text, the
// generator instruction and the extra corpus.
func (p *Pipeline) runTokenizer(ctx context.Context, dir string) (any, error) {
	items, err := data.Load(filepath.Join(p.stageDir(StageData), builder.FileAll))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrData, err)
	}
	var texts []string
	for _, ex := range examplesOf(items) {
		texts = append(texts, SampleText(ex), ex.Item.ModalityType+" "+ex.Item.Dataset)
	}
	if len(p.cfg.Model.Corpus) > 0 {
		more, err := tokenizer.ReadCorpus(ctx, p.cfg.Model.Corpus...)
		if err != nil {
			return nil, fmt.Errorf("read corpus: %w", err)
		}
		texts = append(texts, more...)
	}
	path := filepath.Join(dir, fileTokenizer)
	if err := p.be.Tokenizer(ctx, path, texts, p.cfg.Model.VocabSize); err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return map[string]int{"texts": len(texts)}, nil
}

// SampleText renders an example in models.SampleFormat: the generator's
// target text.
func SampleText(ex Example) string {
	var b strings.Builder
	b.WriteString("Question: " + ex.Item.Question + "\n")
	for i, o := range ex.Item.Options() {
		fmt.Fprintf(&b, "%c. %s\n", data.Letters[i], o)
	}
	letter, _ := ex.Item.AnswerLetter()
	fmt.Fprintf(&b, "<think>%s</think><answer>%s</answer>", ex.Reasoning, letter)
	return b.String()
}

// SeedSummary is the seed stage's summary.
type SeedSummary struct {
	SeedItems  int `json:"seed_items"`
	SeedImages int `json:"seed_images"`
	PoolImages int `json:"pool_images"`
}

// runSeed draws the seed set and the unlabelled pool.
func (p *Pipeline) runSeed(_ context.Context, dir string, s uint64) (any, error) {
	b, err := p.loadBenchmark()
	if err != nil {
		return nil, err
	}
	seedItems, pool, err := SplitSeed(b.train, p.cfg.SeedFraction, s)
	if err != nil {
		return nil, err
	}
	if err := data.Save(filepath.Join(dir, fileSeed), absolute(seedItems)); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(dir, filePool), pool); err != nil {
		return nil, err
	}
	return SeedSummary{SeedItems: len(seedItems), SeedImages: len(groupByImage(seedItems)), PoolImages: len(pool)}, nil
}

// absolute returns items whose image_path is the absolute image file, so
// they can be saved in any folder.
func absolute(items []data.Item) []data.Item {
	out := make([]data.Item, len(items))
	for i, it := range items {
		if f := it.ImageFile(); f != "" {
			if a, err := filepath.Abs(f); err == nil {
				f = a
			}
			it.ImagePath, it.Root = f, ""
		}
		out[i] = it
	}
	return out
}

// loadSeed reads a seed stage's seed items and pool.
func (p *Pipeline) loadSeed(s uint64) ([]data.Item, []GenRequest, error) {
	dir := p.stageDir(seedStage(s, "seed"))
	items, err := data.Load(filepath.Join(dir, fileSeed))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrData, err)
	}
	var pool []GenRequest
	if err := readJSON(filepath.Join(dir, filePool), &pool); err != nil {
		return nil, nil, err
	}
	return items, pool, nil
}

// removeAll removes a scratch folder.
func removeAll(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	return nil
}
