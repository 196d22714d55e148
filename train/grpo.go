package train

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
)

// GRPO defaults (TRL's where TRL has one).
const (
	DefaultGRPOGroup        = 8    // completions per prompt (TRL num_generations)
	DefaultGRPOEpsilon      = 0.2  // lower clip bound ε_low (TRL epsilon)
	DefaultGRPOMaxNewTokens = 64   // completion budget
	DefaultAdvantageEps     = 1e-4 // added to the group std (TRL)
	grpoRNGStream           = 0x6772706f
	metricReward            = "reward"
	metricRewardStd         = "reward_std"
	metricZeroStd           = "frac_reward_zero_std"
	metricMeanLength        = "completions/mean_length"
	metricClipped           = "completions/clipped_ratio"
)

// GRPOConfig configures a GRPO run. RunConfig's Buckets.Batch is the rows
// of one update: Batch/Group prompts, Group completions each (Batch must be
// a multiple of Group); every Buckets length must hold a prompt plus
// MaxNewTokens for the longest prompt to fit.
type GRPOConfig struct {
	RunConfig
	// Group is G, the completions sampled per prompt (≥ 2); 0 means 8.
	Group int
	// Iterations is μ, the updates run on each rollout (TRL
	// num_iterations); 0 means 1. With μ = 1 the ratio is exactly 1 (up to
	// float rounding between the rollout and the train graph), so the loss
	// is ≈ 0 while its gradient is not; μ > 1 lets the ratio move and the
	// clip act.
	Iterations int
	// Temperature is the sampling temperature (> 0; 0 means 1); the train
	// graph divides its logits by the same value so its log-probs match
	// the rollout's.
	Temperature float64
	// TopK and TopP restrict sampling (0 keeps all). The log-probs stay
	// those of the full softmax at Temperature, as in TRL.
	TopK int
	TopP float64
	// MaxNewTokens caps each completion; 0 means 64.
	MaxNewTokens int
	// EpsLow and EpsHigh clip the ratio to [1−EpsLow, 1+EpsHigh]; 0 means
	// 0.2 and EpsLow respectively.
	EpsLow, EpsHigh float64
	// Beta weighs the k3 KL to the frozen starting policy; 0 (the default)
	// neither builds nor runs the reference.
	Beta float64
	// AdvantageEps is added to the group std; 0 means 1e-4.
	AdvantageEps float64
	// Rewards are the weighted reward terms; at least one weight must be
	// non-zero and every weight finite and ≥ 0.
	Rewards []WeightedReward
}

// withDefaults fills the zero fields.
func (c GRPOConfig) withDefaults() GRPOConfig {
	if c.Group == 0 {
		c.Group = DefaultGRPOGroup
	}
	if c.Iterations == 0 {
		c.Iterations = 1
	}
	if c.Temperature == 0 {
		c.Temperature = 1
	}
	if c.MaxNewTokens == 0 {
		c.MaxNewTokens = DefaultGRPOMaxNewTokens
	}
	if c.EpsLow == 0 {
		c.EpsLow = DefaultGRPOEpsilon
	}
	if c.EpsHigh == 0 {
		c.EpsHigh = c.EpsLow
	}
	if c.AdvantageEps == 0 {
		c.AdvantageEps = DefaultAdvantageEps
	}
	return c
}

// Loss returns the loss settings the GRPO train graph must be built with
// (EngineConfig.Loss), defaults filled in.
func (c GRPOConfig) Loss() LossConfig {
	d := c.withDefaults()
	return LossConfig{Temperature: d.Temperature, EpsLow: d.EpsLow, EpsHigh: d.EpsHigh, Beta: d.Beta}
}

// Validate checks the settings (defaults filled in) and returns an error
// wrapping ErrConfig that names the first problem.
func (c GRPOConfig) Validate() error {
	c = c.withDefaults()
	bad := func(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) || x < 0 }
	switch {
	case c.Group < 2:
		return fmt.Errorf("%w: group %d: GRPO needs at least 2 completions per prompt", ErrConfig, c.Group)
	case c.Iterations < 1:
		return fmt.Errorf("%w: iterations %d must be ≥ 1", ErrConfig, c.Iterations)
	case bad(c.Temperature):
		return fmt.Errorf("%w: temperature %g must be > 0 (greedy decoding gives identical completions)", ErrConfig, c.Temperature)
	case c.TopK < 0 || bad(c.TopP) || c.TopP > 1:
		return fmt.Errorf("%w: top_k %d must be ≥ 0 and top_p %g in [0, 1]", ErrConfig, c.TopK, c.TopP)
	case c.MaxNewTokens < 1:
		return fmt.Errorf("%w: max_new_tokens %d must be ≥ 1", ErrConfig, c.MaxNewTokens)
	case bad(c.AdvantageEps):
		return fmt.Errorf("%w: advantage epsilon %g must be ≥ 0", ErrConfig, c.AdvantageEps)
	case c.Buckets.Batch%c.Group != 0 || c.Buckets.Batch < c.Group:
		return fmt.Errorf("%w: batch %d must be a positive multiple of the group %d (whole groups per update)",
			ErrConfig, c.Buckets.Batch, c.Group)
	}
	if err := c.Loss().validate(); err != nil {
		return err
	}
	return validateRewards(c.Rewards)
}

func validateRewards(rs []WeightedReward) error {
	var total float64
	seen := map[string]bool{}
	for _, r := range rs {
		if r.Func == nil {
			return fmt.Errorf("%w: a reward term has no function", ErrConfig)
		}
		if math.IsNaN(r.Weight) || math.IsInf(r.Weight, 0) || r.Weight < 0 {
			return fmt.Errorf("%w: reward %s has weight %g (want finite and ≥ 0)", ErrConfig, r.Func.Name(), r.Weight)
		}
		if seen[r.Func.Name()] {
			return fmt.Errorf("%w: reward %s is listed twice", ErrConfig, r.Func.Name())
		}
		seen[r.Func.Name()] = true
		total += r.Weight
	}
	if total == 0 {
		return fmt.Errorf("%w: every reward weight is zero (nothing to optimise)", ErrConfig)
	}
	return nil
}

// grpoExtra is GRPO's part of a checkpoint: the sampling RNG and, when the
// checkpoint falls between the μ updates of one rollout, that rollout.
type grpoExtra struct {
	RNG     string   `json:"rng"` // base64 PCG state
	Rollout *rollout `json:"rollout,omitempty"`
}

// RunGRPO trains eng (objective GRPO, EngineConfig.Loss = cfg.Loss()) on
// the prompts of items until cfg.Steps updates are done. Each rollout
// writes the current weights into a scratch copy of src
// (OutDir/rollout_bundle), reopens it and samples Group completions for
// each of Batch/Group prompts drawn from items; the rewards are combined,
// normalised within each group into advantages, and μ updates run on the
// rollout. Metrics use TRL's names (reward, reward_std,
// rewards/<fn>/mean, frac_reward_zero_std, kl, clip_ratio/*,
// completions/mean_length, grad_norm, loss). Checkpoints hold the sampling
// RNG and any rollout in progress, so Resume continues the run exactly.
func RunGRPO(ctx context.Context, eng *Engine, src *models.Bundle, prep *Prep, items []data.Item, cfg GRPOConfig) (_ *Recorder, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.RunConfig.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if eng == nil || src == nil || prep == nil {
		return nil, fmt.Errorf("%w: GRPO needs an engine, the policy bundle and a Prep", ErrConfig)
	}
	if eng.cfg.Objective != GRPO || eng.cfg.Loss != cfg.Loss() {
		return nil, fmt.Errorf("%w: the engine trains %q with %+v; GRPO needs objective grpo with %+v",
			ErrConfig, eng.cfg.Objective, eng.cfg.Loss, cfg.Loss())
	}
	r, err := newGRPORun(ctx, eng, src, prep, items, cfg)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, r.close()) }()
	s, meta, err := openSession(eng, cfg.RunConfig)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, s.close(metricReward, "loss")) }()
	if meta != nil {
		if err := r.restore(meta.Extra); err != nil {
			return nil, err
		}
	}
	for eng.State().Step < cfg.Steps {
		if ctx.Err() != nil {
			return s.rec, errors.Join(ctx.Err(), r.checkpoint(s))
		}
		if err := r.update(ctx, s); err != nil {
			return s.rec, err
		}
		if s.due() {
			if err := r.checkpoint(s); err != nil {
				return s.rec, err
			}
		}
	}
	return s.rec, nil
}

// update runs one update, rolling out first when the current rollout is
// used up.
func (r *grpoRun) update(ctx context.Context, s *session) error {
	st := r.eng.State()
	if r.cur == nil || r.cur.Used >= r.cfg.Iterations {
		t0 := time.Now()
		ro, err := r.rollout(ctx)
		if err != nil {
			return fmt.Errorf("train: GRPO rollout before update %d: %w", st.Step+1, err)
		}
		ro.Metrics["time/rollout_s"] = time.Since(t0).Seconds()
		r.cur = ro
	}
	rows, err := r.rows(ctx, r.cur)
	if err != nil {
		return err
	}
	batch, err := MakeBatch(GRPO, r.tok, rows, r.cur.Bucket, r.cfg.Beta > 0)
	if err != nil {
		return err
	}
	step := st.Step + 1
	lr := r.cfg.Schedule.At(step)
	t0 := time.Now()
	res, err := r.eng.Step(ctx, r.cur.Bucket, batch.Tensors, lr)
	if err = errors.Join(err, batch.Close()); err != nil {
		return err
	}
	r.cur.Used++
	rec := Record{"step": float64(step), "loss": res.Loss, "grad_norm": res.GradNorm, "learning_rate": lr,
		"time/step_s": time.Since(t0).Seconds(), "iteration": float64(r.cur.Used)}
	for k, v := range r.cur.Metrics {
		rec[k] = v
	}
	for k, v := range res.Metrics {
		rec[k] = v
	}
	return s.rec.Add(rec)
}

// checkpoint saves the state with the RNG and the unfinished rollout.
func (r *grpoRun) checkpoint(s *session) error {
	raw, _ := r.pcg.MarshalBinary() // PCG's MarshalBinary cannot fail
	ex := grpoExtra{RNG: base64.StdEncoding.EncodeToString(raw)}
	if r.cur != nil && r.cur.Used < r.cfg.Iterations {
		ex.Rollout = r.cur
	}
	js, err := json.Marshal(ex)
	if err != nil {
		return fmt.Errorf("train: GRPO checkpoint: %w", err)
	}
	return s.checkpoint(CheckpointMeta{Extra: js})
}

// restore loads the RNG and rollout of a checkpoint.
func (r *grpoRun) restore(extra json.RawMessage) error {
	var ex grpoExtra
	if err := json.Unmarshal(extra, &ex); err != nil {
		return fmt.Errorf("%w: GRPO state: %v", ErrCheckpoint, err)
	}
	raw, err := base64.StdEncoding.DecodeString(ex.RNG)
	if err == nil {
		err = r.pcg.UnmarshalBinary(raw)
	}
	if err != nil {
		return fmt.Errorf("%w: GRPO sampling RNG: %v", ErrCheckpoint, err)
	}
	if ro := ex.Rollout; ro != nil {
		if err := ro.check(len(r.items), r.cfg.Beta > 0); err != nil {
			return err
		}
	}
	r.cur = ex.Rollout
	return nil
}

// newRNG returns the run's sampling RNG.
func newRNG(seed uint64) (*rand.PCG, *rand.Rand) {
	p := rand.NewPCG(seed, grpoRNGStream)
	return p, rand.New(p)
}
