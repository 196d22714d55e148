package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime/generate"
)

// DirRolloutBundle is the scratch bundle (in RunConfig.OutDir) that each
// GRPO rollout rewrites with the current weights and reopens.
const DirRolloutBundle = "rollout_bundle"

// rollout is one batch of sampled completions with everything the μ
// updates on it need; it is saved in checkpoints taken between them.
type rollout struct {
	Items   []int       `json:"items"`              // prompt item per row (groups of G consecutive rows)
	Tokens  [][]int     `json:"tokens"`             // completion ids per row
	OldLogp [][]float32 `json:"old_logp"`           // rollout log-probs per completion token
	RefLogp [][]float32 `json:"ref_logp,omitempty"` // reference log-probs (β > 0)
	Adv     []float32   `json:"advantages"`         // group-normalised advantage per row
	Bucket  Bucket      `json:"bucket"`             // the train-step shape of the rows
	Metrics Record      `json:"metrics"`            // reward and completion metrics of the rollout
	Used    int         `json:"used"`               // updates already run on it
}

// check validates a rollout read back from a checkpoint.
func (ro *rollout) check(items int, withRef bool) error {
	n := len(ro.Items)
	ok := n > 0 && len(ro.Tokens) == n && len(ro.OldLogp) == n && len(ro.Adv) == n && n <= ro.Bucket.Batch &&
		(!withRef || len(ro.RefLogp) == n)
	for i := 0; ok && i < n; i++ {
		ok = ro.Items[i] >= 0 && ro.Items[i] < items && len(ro.Tokens[i]) > 0 && len(ro.OldLogp[i]) == len(ro.Tokens[i]) &&
			(!withRef || len(ro.RefLogp[i]) == len(ro.Tokens[i]))
	}
	if !ok {
		return fmt.Errorf("%w: the saved GRPO rollout is inconsistent (or from other data or β settings)", ErrCheckpoint)
	}
	return nil
}

// grpoRun is the state of one RunGRPO call.
type grpoRun struct {
	eng     *Engine
	src     *models.Bundle
	prep    *Prep
	items   []data.Item
	cfg     GRPOConfig
	tok     Tokens
	pcg     *rand.PCG
	rng     *rand.Rand
	cur     *rollout
	prompts map[int]Row // prompt rows by item index (cached)
	ref     *logpModel  // the frozen reference (β > 0)
}

func newGRPORun(ctx context.Context, eng *Engine, src *models.Bundle, prep *Prep, items []data.Item, cfg GRPOConfig) (*grpoRun, error) {
	per := cfg.Buckets.Batch / cfg.Group
	if len(items) < per {
		return nil, fmt.Errorf("%w: %d items for %d prompts per rollout", ErrData, len(items), per)
	}
	if src.Manifest.HasRole(models.RoleReward) {
		return nil, fmt.Errorf("%w: %s is a reward model; GRPO trains a policy with logits", ErrConfig, src.Dir)
	}
	pcg, rng := newRNG(cfg.Seed)
	r := &grpoRun{eng: eng, src: src, prep: prep, items: items, cfg: cfg, tok: prep.Tokens(), pcg: pcg, rng: rng,
		prompts: map[int]Row{}}
	if err := r.checkLengths(ctx); err != nil {
		return nil, err
	}
	if cfg.Beta > 0 {
		ws, err := BundleWeights(src)
		if err != nil {
			return nil, err
		}
		if r.ref, err = newLogpModel(eng, ws); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *grpoRun) close() error { return r.ref.close() }

// checkLengths encodes every prompt (which also checks each item) and
// makes sure the longest, plus MaxNewTokens, fits the largest bucket.
func (r *grpoRun) checkLengths(ctx context.Context) error {
	longest := 0
	for i := range r.items {
		p, err := r.prompt(ctx, i)
		if err != nil {
			return err
		}
		longest = max(longest, len(p.IDs))
	}
	maxLen := r.cfg.Buckets.Lengths[len(r.cfg.Buckets.Lengths)-1]
	if longest+r.cfg.MaxNewTokens > maxLen {
		return fmt.Errorf("%w: the longest prompt (%d tokens) plus max_new_tokens %d exceeds the largest bucket length %d",
			ErrConfig, longest, r.cfg.MaxNewTokens, maxLen)
	}
	return nil
}

// prompt returns item i's prompt row (ids, image features), cached.
func (r *grpoRun) prompt(ctx context.Context, i int) (Row, error) {
	if p, ok := r.prompts[i]; ok {
		return p, nil
	}
	it := r.items[i]
	if _, err := it.AnswerIndex(); err != nil {
		return Row{}, fmt.Errorf("%w: item %d (%s): %w", ErrData, i, it.QuestionID, err)
	}
	p, _, err := r.prep.Row(ctx, it.Question, it.Options(), it.ImageFile(), "")
	if err != nil {
		return Row{}, fmt.Errorf("item %d (%s): %w", i, it.QuestionID, err)
	}
	r.prompts[i] = p
	return p, nil
}

// openPolicy writes the current weights into the scratch bundle and opens
// it: rollouts always sample from the weights being trained.
func (r *grpoRun) openPolicy(ctx context.Context) (*models.VLM, error) {
	dir := filepath.Join(r.cfg.OutDir, DirRolloutBundle)
	st := r.eng.State()
	specs := models.WeightSpecs(r.src.Manifest.Architecture, false)
	ws := make(map[string]*graph.Tensor, len(specs))
	for _, s := range specs {
		d, shape, ok := st.Tensor(s.Name)
		if !ok {
			return nil, fmt.Errorf("%w: the state has no weight %q", ErrConfig, s.Name)
		}
		ws[s.Name] = &graph.Tensor{DType: graph.Float32, Dims: shape, F32: d}
	}
	if _, err := models.Rewrite(ctx, r.src, dir, ws); err != nil {
		return nil, fmt.Errorf("train: rollout bundle: %w", err)
	}
	so := r.eng.cfg.Session
	v, err := models.Open(ctx, dir, models.VLMOptions{Env: r.eng.env, Device: so.Device, IntraOpThreads: so.IntraOpThreads})
	if err != nil {
		return nil, fmt.Errorf("train: open rollout policy: %w", err)
	}
	return v, nil
}

// rollout samples Group completions for Batch/Group prompts with the
// current weights and scores them.
func (r *grpoRun) rollout(ctx context.Context) (_ *rollout, err error) {
	G, per := r.cfg.Group, r.cfg.Buckets.Batch/r.cfg.Group
	chosen := r.rng.Perm(len(r.items))[:per]
	seed := r.rng.Uint64()
	t0 := time.Now()
	pol, err := r.openPolicy(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, pol.Close()) }()
	sync := time.Since(t0).Seconds()
	ro := &rollout{Metrics: Record{"time/sync_s": sync}}
	var prompts []models.Prompt
	var opts []generate.Options
	var cs []Completion
	for _, i := range chosen {
		p, err := r.prompt(ctx, i)
		if err != nil {
			return nil, err
		}
		im, err := r.imageOf(ctx, i)
		if err != nil {
			return nil, err
		}
		mp := models.Prompt{IDs: p.IDs}
		if im != nil {
			mp.Images = append(mp.Images, im.Pixels)
		}
		for range G {
			ro.Items = append(ro.Items, i)
			prompts = append(prompts, mp)
			opts = append(opts, r.sampling(pol, seed+uint64(len(opts))))
			c := Completion{Item: r.items[i]}
			if im != nil {
				c.Pixels = im.Pixels
			}
			cs = append(cs, c)
		}
	}
	res, err := pol.Generate(ctx, prompts, opts, models.GenerateOptions{})
	if err != nil {
		return nil, fmt.Errorf("train: rollout generation: %w", err)
	}
	if err := r.collect(ctx, pol, ro, res, cs); err != nil {
		return nil, err
	}
	return ro, nil
}

// imageOf returns item i's processed image (cached by Prep), or nil.
func (r *grpoRun) imageOf(ctx context.Context, i int) (*Image, error) {
	path := r.items[i].ImageFile()
	if path == "" {
		return nil, nil
	}
	return r.prep.Image(ctx, path)
}

// sampling returns the generation options of one completion.
func (r *grpoRun) sampling(pol *models.VLM, seed uint64) generate.Options {
	tok := pol.Tokenizer()
	return generate.Options{MaxNewTokens: r.cfg.MaxNewTokens, Temperature: float32(r.cfg.Temperature),
		TopK: r.cfg.TopK, TopP: float32(r.cfg.TopP), Seed: seed, StopTokens: pol.Manifest().SpecialTokens.EOS,
		StopStrings: []string{models.AnswerClose}, Detokenize: func(ids []int) string {
			s, _ := tok.Decode(ids, false) // generated ids are in the vocabulary
			return s
		}}
}

// collect decodes the completions, scores them, and fills the rollout's
// rows, bucket, reference log-probs and metrics.
func (r *grpoRun) collect(ctx context.Context, pol *models.VLM, ro *rollout, res []generate.Result, cs []Completion) error {
	var clipped, length float64
	longest := 0
	for i, g := range res {
		text, err := pol.Tokenizer().Decode(g.Tokens, true)
		if err != nil {
			return fmt.Errorf("train: decode completion %d: %w", i, err)
		}
		cs[i].Text, cs[i].Tokens = text, g.Tokens
		ro.Tokens = append(ro.Tokens, g.Tokens)
		ro.OldLogp = append(ro.OldLogp, g.LogProbs)
		length += float64(len(g.Tokens))
		if g.FinishReason == generate.FinishLength {
			clipped++
		}
		p, _ := r.prompt(ctx, ro.Items[i]) // cached by rollout
		longest = max(longest, len(p.IDs)+len(g.Tokens))
	}
	var err error
	if ro.Bucket, err = r.cfg.Buckets.For(longest); err != nil {
		return err
	}
	prompts := make([]Row, len(ro.Items))
	for i, it := range ro.Items {
		prompts[i], _ = r.prompt(ctx, it) // cached by rollout
	}
	if ro.Bucket.Grid, err = ImageGrid(prompts); err != nil {
		return err
	}
	st, err := scoreCompletions(ctx, r.cfg.Rewards, cs, r.cfg.Group, r.cfg.AdvantageEps)
	if err != nil {
		return err
	}
	for _, a := range st.Advantages {
		ro.Adv = append(ro.Adv, float32(a))
	}
	n := float64(len(res))
	m := ro.Metrics
	m[metricReward], _ = MeanStd(st.Rewards)
	m[metricRewardStd], m[metricZeroStd] = st.MeanStd, st.ZeroStd
	m[metricMeanLength], m[metricClipped] = length/n, clipped/n
	for name, rs := range st.PerFunc {
		m["rewards/"+name+"/mean"], m["rewards/"+name+"/std"] = MeanStd(rs)
	}
	if r.ref != nil {
		return r.referenceLogp(ctx, ro)
	}
	return nil
}

// MeanStd returns the mean and the sample (unbiased, n−1) standard
// deviation of v. An empty v gives 0, 0; a single value gives that value
// and a standard deviation of 0.
func MeanStd(v []float64) (float64, float64) {
	if len(v) == 0 {
		return 0, 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	mean := s / float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)-1))
}

// rows turns a rollout into training rows: prompt + completion, the loss
// over the completion.
func (r *grpoRun) rows(ctx context.Context, ro *rollout) ([]Row, error) {
	out := make([]Row, len(ro.Items))
	for i, it := range ro.Items {
		p, err := r.prompt(ctx, it)
		if err != nil {
			return nil, err
		}
		ids := make([]int, 0, len(p.IDs)+len(ro.Tokens[i]))
		ids = append(append(ids, p.IDs...), ro.Tokens[i]...)
		row := Row{IDs: ids, AnswerStart: len(p.IDs), AnswerEnd: len(ids), Features: p.Features, Pixels: p.Pixels, Grids: p.Grids,
			OldLogp: ro.OldLogp[i], Advantage: ro.Adv[i]}
		if ro.RefLogp != nil {
			row.RefLogp = ro.RefLogp[i]
		}
		out[i] = row
	}
	return out, nil
}

// referenceLogp fills the rollout's reference log-probs from the frozen
// starting weights.
func (r *grpoRun) referenceLogp(ctx context.Context, ro *rollout) error {
	rows, err := r.rows(ctx, ro)
	if err != nil {
		return err
	}
	ro.RefLogp, err = r.ref.logp(ctx, r.tok, rows, ro.Bucket)
	return err
}
