package pipeline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"

	"github.com/medgr2/medgr2/data"
)

// BootstrapSummary is round 0's summary: the generator's SFT on the seed
// samples and the reward model's first training on graded seed samples.
type BootstrapSummary struct {
	SeedExamples   int            `json:"seed_examples"`
	GradedExamples int            `json:"graded_examples"`
	GradedKinds    map[string]int `json:"graded_kinds"`
	Generator      TrainStats     `json:"generator"`
	Reward         TrainStats     `json:"reward"`
}

// tokenizerPath is the shared tokenizer file.
func (p *Pipeline) tokenizerPath() string {
	return filepath.Join(p.stageDir(StageTokenizer), fileTokenizer)
}

// fresh writes a random bundle of role into a scratch folder of dir and
// returns it; the caller removes it after training from it.
func (p *Pipeline) fresh(ctx context.Context, dir string, role Role, seed uint64) (string, error) {
	d := filepath.Join(dir, "init-"+string(role))
	if err := p.be.NewBundle(ctx, d, role, p.tokenizerPath(), seed); err != nil {
		return "", fmt.Errorf("new %s bundle: %w", role, err)
	}
	return d, nil
}

// runBootstrap trains generator-0 (SFT on the seed samples) and reward-0
// (MSE on the graded seed samples).
func (p *Pipeline) runBootstrap(ctx context.Context, dir string, s uint64) (any, error) {
	seedItems, _, err := p.loadSeed(s)
	if err != nil {
		return nil, err
	}
	if len(seedItems) == 0 {
		return nil, fmt.Errorf("%w: no seed items", ErrData)
	}
	seedEx := examplesOf(seedItems)
	graded := GradeSamples(seedEx, s)
	sum := BootstrapSummary{SeedExamples: len(seedEx), GradedExamples: len(graded), GradedKinds: map[string]int{}}
	for _, g := range graded {
		sum.GradedKinds[g.Kind]++
	}
	for _, job := range []struct {
		role  Role
		train func(base, out string) (TrainStats, error)
		stats *TrainStats
	}{
		{RoleGenerator, func(base, out string) (TrainStats, error) {
			return p.be.SFT(ctx, base, out, RoleGenerator, seedEx, p.opts(p.cfg.GeneratorSFT, s))
		}, &sum.Generator},
		{RoleReward, func(base, out string) (TrainStats, error) {
			return p.be.TrainReward(ctx, base, out, graded, p.opts(p.cfg.RewardTrain, s))
		}, &sum.Reward},
	} {
		base, done, err := p.start(ctx, dir, job.role, s)
		if err != nil {
			return nil, err
		}
		out := filepath.Join(dir, string(job.role))
		if *job.stats, err = job.train(base, out); err != nil {
			return nil, fmt.Errorf("train %s: %w", job.role, err)
		}
		if err := done(); err != nil {
			return nil, err
		}
	}
	return sum, nil
}

// opts returns t with the run seed mixed in.
func (p *Pipeline) opts(t TrainOptions, s uint64) TrainOptions {
	t.Seed = t.Seed*1000003 + s
	return t
}

// RoundSummary is one co-development round's log line.
type RoundSummary struct {
	Round            int        `json:"round"`
	PoolImages       int        `json:"pool_images"`
	Generated        int        `json:"generated"`
	Parsed           int        `json:"parsed"`
	Deduped          int        `json:"deduped"` // parsed samples that had a repeated option dropped
	Eligible         int        `json:"eligible"`
	Accepted         int        `json:"accepted"`
	Verified         int        `json:"verified"` // accepted samples that pass Config.Verify (retrained on; the filtered policy's data)
	DroppedByShare   int        `json:"dropped_by_share"`
	AcceptanceRate   float64    `json:"acceptance_rate"`        // accepted / generated
	AcceptedTrue     float64    `json:"accepted_true_accuracy"` // share of accepted samples whose answer is truly correct
	ParsedTrue       float64    `json:"parsed_true_accuracy"`   // the same over every parsed sample (the unfiltered baseline)
	VerifiedTrue     float64    `json:"verified_true_accuracy"` // the same over the verified samples
	AcceptedCoherent float64    `json:"accepted_coherent"`      // share of accepted samples whose reasoning names the chosen option (Coherent)
	ParsedCoherent   float64    `json:"parsed_coherent"`        // the same over every parsed sample
	MeanScore        float64    `json:"mean_score"`             // mean reward score of parsed samples
	Templates        int        `json:"accepted_templates"`     // distinct question templates accepted
	Reward           TrainStats `json:"reward"`
	Generator        TrainStats `json:"generator"`
}

// runRound is one co-development round: generate on the pool with the
// previous generator, score with the previous reward model, filter,
// retrain the reward model on the verified samples and hard negatives,
// and improve the generator by SFT on the accepted samples.
func (p *Pipeline) runRound(ctx context.Context, dir string, s uint64, k int) (any, error) {
	seedItems, pool, err := p.loadSeed(s)
	if err != nil {
		return nil, err
	}
	prev := p.stageDir(roundStage(s, k-1))
	g := p.cfg.Generate
	batch := genBatch{id: fmt.Sprintf("gen-s%d-r%d", s, k), poolLimit: g.PoolLimit, perImage: g.PerImage,
		shuffle: uint64(k), round: k, filter: p.cfg.Filter}
	cands, sum, err := p.generateScored(ctx, dir, prev, pool, s, batch)
	if err != nil {
		return nil, err
	}
	verified, negatives := acceptedExamples(cands, p.cfg.Verify)
	seedEx := examplesOf(seedItems)
	// Reward model: the seed's graded set, the verified samples as
	// originals with their own perturbations (hard negatives close to what
	// it just accepted), and as incoherent the accepted samples that
	// failed verification and the unparseable completions.
	graded := append(GradeSamples(seedEx, s), GradeSamples(verified, s+uint64(k))...)
	graded = append(graded, negatives...)
	if sum.Reward, err = p.be.TrainReward(ctx, filepath.Join(prev, dirReward), filepath.Join(dir, dirReward),
		graded, p.opts(p.cfg.RoundRewardTrain, s+uint64(k))); err != nil {
		return nil, fmt.Errorf("retrain reward: %w", err)
	}
	genEx := append(append([]Example(nil), seedEx...), verified...)
	if sum.Generator, err = p.be.SFT(ctx, filepath.Join(prev, dirGenerator), filepath.Join(dir, dirGenerator),
		RoleGenerator, genEx, p.opts(p.cfg.RoundGeneratorSFT, s+uint64(k))); err != nil {
		return nil, fmt.Errorf("improve generator: %w", err)
	}
	return sum, nil
}

// runSynthesis is the synthesis pass: the last round's generator writes
// samples over the pool, the last round's reward model scores them and
// the filter accepts as in a round. Nothing is retrained; the policies
// train on its candidates.
func (p *Pipeline) runSynthesis(ctx context.Context, dir string, s uint64) (any, error) {
	_, pool, err := p.loadSeed(s)
	if err != nil {
		return nil, err
	}
	c := p.cfg.Synthesis
	k := p.cfg.Rounds + 1
	batch := genBatch{id: fmt.Sprintf("gen-s%d-syn", s), poolLimit: c.PoolLimit, perImage: c.PerImage,
		shuffle: uint64(k), round: k, filter: p.cfg.Filter}
	if c.Filter != nil {
		batch.filter = *c.Filter
	}
	_, sum, err := p.generateScored(ctx, dir, p.stageDir(roundStage(s, p.cfg.Rounds)), pool, s, batch)
	if err != nil {
		return nil, err
	}
	return sum, nil
}

// genBatch says which samples one generation pass draws.
type genBatch struct {
	id        string // question id prefix
	poolLimit int    // pool images used (a sample seeded by the run seed and shuffle); 0 means all
	perImage  int    // samples per image
	shuffle   uint64 // second seed of the pool sample and of sampling
	round     int    // Candidate.Round
	filter    FilterConfig
}

// generateScored runs one generation pass with the generator and reward
// model of stage folder prev: generate, score, mark each sample's truth
// (against the benchmark's labels) and coherence (measurements), filter,
// save the candidates into dir and summarize.
func (p *Pipeline) generateScored(ctx context.Context, dir, prev string, pool []GenRequest, s uint64,
	batch genBatch) ([]Candidate, RoundSummary, error) {
	b, err := p.loadBenchmark()
	if err != nil {
		return nil, RoundSummary{}, err
	}
	cands, err := p.generate(ctx, filepath.Join(prev, dirGenerator), pool, s, batch)
	if err != nil {
		return nil, RoundSummary{}, err
	}
	if err := p.score(ctx, filepath.Join(prev, dirReward), cands); err != nil {
		return nil, RoundSummary{}, err
	}
	truth := NewTruth(b.all)
	for i := range cands {
		cands[i].Correct = cands[i].Err == "" && truth.Correct(cands[i].Item)
		cands[i].Coherent = cands[i].Err == "" && Coherent(cands[i].Item, cands[i].Reasoning)
	}
	fr := Filter(cands, batch.filter)
	sum := summarizeRound(cands, fr, batch.round, len(pool), p.cfg.Verify)
	if err := saveCandidates(filepath.Join(dir, fileCandidates), cands); err != nil {
		return nil, RoundSummary{}, err
	}
	return cands, sum, nil
}

// generate samples batch.perImage completions for (a seeded sample of)
// the pool.
func (p *Pipeline) generate(ctx context.Context, gen string, pool []GenRequest, s uint64, batch genBatch) ([]Candidate, error) {
	g := p.cfg.Generate
	imgs := append([]GenRequest(nil), pool...)
	if batch.poolLimit > 0 && batch.poolLimit < len(imgs) {
		rng := rand.New(rand.NewPCG(s, batch.shuffle))
		rng.Shuffle(len(imgs), func(i, j int) { imgs[i], imgs[j] = imgs[j], imgs[i] })
		imgs = imgs[:batch.poolLimit]
	}
	var reqs []GenRequest
	for i, r := range imgs {
		for j := range batch.perImage {
			r.QuestionID = fmt.Sprintf("%s-%d-%d", batch.id, i, j)
			reqs = append(reqs, r)
		}
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("%w: empty pool", ErrData)
	}
	out, err := p.be.Generate(ctx, gen, reqs, SampleOptions{Temperature: g.Temperature, AnswerTemperature: g.AnswerTemperature, TopK: g.TopK,
		MaxNewTokens: g.MaxNewTokens, Seed: s*7919 + batch.shuffle})
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	if len(out) != len(reqs) {
		return nil, fmt.Errorf("%w: generator returned %d samples for %d requests", ErrData, len(out), len(reqs))
	}
	cands := make([]Candidate, len(out))
	for i, o := range out {
		r := reqs[i]
		o.Item.QuestionID, o.Item.ImagePath, o.Item.Root = r.QuestionID, r.Image, ""
		o.Item.ModalityType, o.Item.Dataset = r.Modality, r.Dataset
		deduped := 0
		if o.Err == "" {
			// A small generator often writes one option twice; the repeat
			// carries nothing, so it is dropped rather than the sample.
			deduped = o.Item.DedupeOptions()
			if err := o.Item.Validate(); err != nil {
				o.Err = err.Error()
			}
		}
		cands[i] = Candidate{Generated: o, Round: batch.round, Deduped: deduped}
	}
	return cands, nil
}

// score fills in the reward score of every parsed candidate.
func (p *Pipeline) score(ctx context.Context, reward string, cands []Candidate) error {
	var idx []int
	var ex []Example
	for i, c := range cands {
		if c.Err == "" {
			idx = append(idx, i)
			ex = append(ex, Example{Item: c.Item, Reasoning: c.Reasoning})
		}
	}
	if len(ex) == 0 {
		return nil
	}
	scores, err := p.be.Score(ctx, reward, ex)
	if err != nil {
		return fmt.Errorf("score: %w", err)
	}
	if len(scores) != len(ex) {
		return fmt.Errorf("%w: reward model returned %d scores for %d samples", ErrData, len(scores), len(ex))
	}
	for j, i := range idx {
		cands[i].Score = scores[j]
	}
	return nil
}

// summarizeRound counts a round's candidates.
func summarizeRound(cands []Candidate, fr FilterResult, k, pool int, verify string) RoundSummary {
	sum := RoundSummary{Round: k, PoolImages: pool, Generated: len(cands), Eligible: fr.Eligible,
		Accepted: fr.Accepted, DroppedByShare: fr.DroppedByShare}
	var accTrue, parsedTrue, accCoh, parsedCoh, verTrue int
	var total float64
	templates := map[string]bool{}
	for _, c := range cands {
		if c.Err != "" {
			continue
		}
		sum.Parsed++
		if c.Deduped > 0 {
			sum.Deduped++
		}
		total += c.Score
		if c.Correct {
			parsedTrue++
		}
		if c.Coherent {
			parsedCoh++
		}
		if c.Accepted {
			templates[templateOf(c.Item)] = true
			if c.Correct {
				accTrue++
			}
			if c.Coherent {
				accCoh++
			}
		}
		if c.Verified(verify) {
			sum.Verified++
			if c.Correct {
				verTrue++
			}
		}
	}
	sum.Templates = len(templates)
	sum.AcceptanceRate = ratio(sum.Accepted, sum.Generated)
	sum.AcceptedTrue = ratio(accTrue, sum.Accepted)
	sum.ParsedTrue = ratio(parsedTrue, sum.Parsed)
	sum.AcceptedCoherent = ratio(accCoh, sum.Accepted)
	sum.ParsedCoherent = ratio(parsedCoh, sum.Parsed)
	sum.VerifiedTrue = ratio(verTrue, sum.Verified)
	if sum.Parsed > 0 {
		sum.MeanScore = total / float64(sum.Parsed)
	}
	return sum
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// acceptedExamples returns the accepted candidates that pass verification
// (all of them with VerifyNone) as examples, and as incoherent reward
// samples the accepted ones that fail it (the reward model's false
// positives) and the unparseable completions (their image with an empty
// question: the reward model learns that junk scores 0).
func acceptedExamples(cands []Candidate, verify string) (verified []Example, negatives []Graded) {
	unparsed := 0
	for _, c := range cands {
		switch {
		case c.Verified(verify):
			verified = append(verified, Example{Item: c.Item, Reasoning: c.Reasoning})
		case c.Accepted:
			negatives = append(negatives, Graded{Example: Example{Item: c.Item, Reasoning: c.Reasoning},
				Level: LevelIncoherent, Kind: "unverified"})
		case c.Err != "" && unparsed < 64:
			unparsed++
			text := strings.TrimSpace(c.Text)
			if len(text) > 200 {
				text = text[:200]
			}
			if text == "" {
				text = "(empty)"
			}
			it := data.Item{QuestionID: c.Item.QuestionID, ImagePath: c.Item.ImagePath, ModalityType: c.Item.ModalityType,
				Dataset: c.Item.Dataset, Question: text, OptionA: "yes", OptionB: "no", GTAnswer: "yes"}
			negatives = append(negatives, Graded{Example: Example{Item: it, Reasoning: text},
				Level: LevelIncoherent, Kind: "unparsed"})
		}
	}
	return verified, negatives
}

// saveCandidates writes every candidate, one JSON object per line.
func saveCandidates(path string, cands []Candidate) error {
	return writeJSONL(path, cands)
}

// LoadCandidates reads a round's candidates (the stage's
// candidates.jsonl).
func LoadCandidates(path string) ([]Candidate, error) {
	var out []Candidate
	if err := readJSONL(path, &out); err != nil {
		return nil, err
	}
	return out, nil
}
