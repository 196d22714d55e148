package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/train"
)

// grpoConfig is the JSON of `medgr2 train grpo --config FILE`: the shared
// training settings plus GRPO's; every field is also a flag of the same
// name, which overrides the file. batch is the rows of one update (batch /
// group prompts, group completions each).
type grpoConfig struct {
	trainConfig
	Group        int     `json:"group"`          // completions per prompt G (≥ 2)
	Iterations   int     `json:"iterations"`     // updates per rollout μ
	Temperature  float64 `json:"temperature"`    // sampling temperature (> 0), also the train graph's
	TopK         int     `json:"top_k"`          // 0 keeps all
	TopP         float64 `json:"top_p"`          // 0 or 1 keeps all
	MaxNewTokens int     `json:"max_new_tokens"` // completion cap
	EpsilonLow   float64 `json:"epsilon_low"`    // ratio clip 1 − ε_low
	EpsilonHigh  float64 `json:"epsilon_high"`   // ratio clip 1 + ε_high
	Beta         float64 `json:"beta"`           // k3 KL weight (0: no reference)
	RewardModel  string  `json:"reward_model"`   // reward bundle (needed when reward_weight > 0)
	RewardWeight float64 `json:"reward_weight"`  // weight of the normalised reward-model score
	MatchWeight  float64 `json:"match_weight"`   // weight of the exact match of the letter in <answer>
	FormatWeight float64 `json:"format_weight"`  // weight of the <think>…</think><answer>…</answer> format
}

func defaultGRPOConfig() grpoConfig {
	tc := defaultTrainConfig()
	tc.LR, tc.Warmup, tc.Decay, tc.Batch, tc.CheckpointEvery = 1e-4, 0, "constant", 16, 20
	return grpoConfig{trainConfig: tc, Group: train.DefaultGRPOGroup, Iterations: 1, Temperature: 1,
		MaxNewTokens: train.DefaultGRPOMaxNewTokens, EpsilonLow: train.DefaultGRPOEpsilon, EpsilonHigh: train.DefaultGRPOEpsilon,
		RewardWeight: 0.8, MatchWeight: 0.2}
}

// parseGRPOFlags reads --config, then lets every other flag override it.
func parseGRPOFlags(args []string, stderr io.Writer) (grpoConfig, bool, error) {
	cfg := defaultGRPOConfig()
	if err := readTrainConfig(args, &cfg); err != nil {
		return cfg, false, err
	}
	fs := flag.NewFlagSet("train grpo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	finish := addTrainFlags(fs, &cfg.trainConfig)
	fs.IntVar(&cfg.Group, "group", cfg.Group, "completions per prompt (G ≥ 2)")
	fs.IntVar(&cfg.Iterations, "iterations", cfg.Iterations, "updates per rollout (μ)")
	fs.Float64Var(&cfg.Temperature, "temperature", cfg.Temperature, "sampling temperature (> 0)")
	fs.IntVar(&cfg.TopK, "top_k", cfg.TopK, "sample among the k most likely tokens (0: all)")
	fs.Float64Var(&cfg.TopP, "top_p", cfg.TopP, "nucleus sampling mass (0 or 1: all)")
	fs.IntVar(&cfg.MaxNewTokens, "max_new_tokens", cfg.MaxNewTokens, "completion length cap")
	fs.Float64Var(&cfg.EpsilonLow, "epsilon_low", cfg.EpsilonLow, "lower ratio clip ε_low")
	fs.Float64Var(&cfg.EpsilonHigh, "epsilon_high", cfg.EpsilonHigh, "upper ratio clip ε_high")
	fs.Float64Var(&cfg.Beta, "beta", cfg.Beta, "k3 KL weight to the starting policy (0: no reference)")
	fs.StringVar(&cfg.RewardModel, "reward_model", cfg.RewardModel, "reward-model bundle (needed when reward_weight > 0)")
	fs.Float64Var(&cfg.RewardWeight, "reward_weight", cfg.RewardWeight, "weight of the reward model's score mapped to [0, 1]")
	fs.Float64Var(&cfg.MatchWeight, "match_weight", cfg.MatchWeight, "weight of the exact match of the answer letter")
	fs.Float64Var(&cfg.FormatWeight, "format_weight", cfg.FormatWeight, "weight of the think/answer format term")
	resume := fs.Bool("resume", false, "continue from the newest checkpoint in OUT/checkpoints")
	if err := parseFlags(fs, args); err != nil {
		return cfg, false, err
	}
	finish()
	if cfg.Bundle == "" || cfg.Data == "" || cfg.Out == "" {
		return cfg, false, usageError("train grpo: --bundle, --data and --out are required (flags or config)")
	}
	if cfg.RewardWeight > 0 && cfg.RewardModel == "" {
		return cfg, false, usageError(fmt.Sprintf("train grpo: reward_weight %g > 0 needs a reward-model bundle (--reward_model DIR), "+
			"or set --reward_weight 0", cfg.RewardWeight))
	}
	return cfg, *resume, nil
}

// runConfig converts the CLI settings to train.GRPOConfig; the reward-model
// term's VLM is set once opened.
func (c grpoConfig) runConfig(resume bool, progress io.Writer) train.GRPOConfig {
	return train.GRPOConfig{
		RunConfig: train.RunConfig{Steps: c.Steps, Schedule: train.Schedule{LR: c.LR, Warmup: c.Warmup, Decay: c.Decay},
			Buckets: train.Buckets{Batch: c.Batch, Lengths: c.Lengths}, Seed: c.Seed, OutDir: c.Out,
			CheckpointEvery: c.CheckpointEvery, Resume: resume, Progress: progress},
		Group: c.Group, Iterations: c.Iterations, Temperature: c.Temperature, TopK: c.TopK, TopP: c.TopP,
		MaxNewTokens: c.MaxNewTokens, EpsLow: c.EpsilonLow, EpsHigh: c.EpsilonHigh, Beta: c.Beta,
		Rewards: []train.WeightedReward{{Func: train.ModelReward{}, Weight: c.RewardWeight},
			{Func: train.ExactMatch{}, Weight: c.MatchWeight}, {Func: train.Format{}, Weight: c.FormatWeight}},
	}
}

// trainGRPO runs `medgr2 train grpo`.
func trainGRPO(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	cfg, resume, err := parseGRPOFlags(args, stderr)
	if err != nil {
		return err
	}
	gc := cfg.runConfig(resume, stderr)
	if err := gc.Validate(); err != nil {
		return fmt.Errorf("train grpo: %w", err)
	}
	if cfg.RewardWeight > 0 { // check the reward bundle before any work
		if _, err := models.Load(ctx, cfg.RewardModel); err != nil {
			return fmt.Errorf("train grpo: reward model: %w", err)
		}
	}
	items, src, err := cfg.load(ctx)
	if err != nil {
		return err
	}
	env, err := runtime.Open(ctx, runtime.Options{})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, env.Close()) }()
	vo := models.VLMOptions{Env: env, IntraOpThreads: cfg.Threads}
	if cfg.RewardWeight > 0 {
		var rm *models.VLM
		if rm, err = models.Open(ctx, cfg.RewardModel, vo); err != nil {
			return fmt.Errorf("train grpo: reward model: %w", err)
		}
		defer func() { err = errors.Join(err, rm.Close()) }()
		if !rm.Manifest().HasRole(models.RoleReward) {
			return fmt.Errorf("train grpo: %w: %s is not a reward-model bundle", models.ErrRole, cfg.RewardModel)
		}
		gc.Rewards[0].Func = train.ModelReward{VLM: rm}
	}
	vlm, err := models.Open(ctx, src.Dir, vo)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, vlm.Close()) }()
	return runGRPOLoop(ctx, cfg, gc, src, env, train.NewPrepFor(vlm, cfg.engine(train.GRPO, gc.Loss())), items, stdout)
}

// runGRPOLoop builds the state and engine, trains, and writes the bundle.
func runGRPOLoop(ctx context.Context, cfg grpoConfig, gc train.GRPOConfig, src *models.Bundle, env *runtime.Env,
	prep *train.Prep, items []data.Item, stdout io.Writer) (err error) {
	t, err := train.NewTrainer(env, src, cfg.engine(train.GRPO, gc.Loss()))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, t.Close()) }()
	rec, err := train.RunGRPO(ctx, t.Engine, src, prep, items, gc)
	if err != nil {
		return err
	}
	b, err := t.WriteBundle(ctx, filepath.Join(cfg.Out, train.DirBundle))
	if err != nil {
		return err
	}
	n := len(rec.History)
	k := max(1, n/5)
	fmt.Fprintf(stdout, "trained grpo for %d steps; mean reward first %d updates %.4f, last %d %.4f; bundle %s, metrics %s, curves %s\n",
		t.State.Step, k, meanRecord(rec, "reward", 0, k), k, meanRecord(rec, "reward", n-k, n), b.Dir,
		filepath.Join(cfg.Out, train.FileMetrics), filepath.Join(cfg.Out, train.FileCurves))
	return nil
}

// meanRecord returns the mean of key over records [from, to).
func meanRecord(rec *train.Recorder, key string, from, to int) float64 {
	from = max(from, 0)
	if to <= from {
		return 0
	}
	var s float64
	for _, r := range rec.History[from:to] {
		s += r[key]
	}
	return s / float64(to-from)
}
