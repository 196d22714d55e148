// Package train fine-tunes the project's vision-language models through
// ONNX Runtime: supervised fine-tuning (SFT), reward-model regression and
// GRPO, with train steps exported as standard ONNX graphs (forward +
// backward + clipping + AdamW, see graph.BuildTrainStep).
//
// # Graphs
//
// BuildGraph composes, for one static (batch, length) Bucket, the embedding
// lookup, the splice of image features at <|image_pad|> rows
// (features·mask + embed(ids)·(1−mask)) and the models package's decoder
// (inlined node by node, weights as inputs), then the objective. The image
// features are either precomputed (the image_embeds input, while the vision
// encoder is frozen) or, for a bucket with an image Grid, the output of the
// models package's vision encoder inlined the same way: pixel_values
// [B·P, 1176] and grid_thw [B, 3] for P patches per row, its [B·P/4, H]
// output gathered into [B, S, H] by the int64 image_index input. The
// objectives:
//
//   - SFT: −Σ w·log p(label), w = answer tokens normalised to a token mean.
//   - Reward: Σ w·(score − level)², the reward head's score at the last
//     real token; levels 10 / 6 / 0 / −6 (GradedSamples builds them).
//     With LossConfig.RankWeight > 0 a pairwise ranking term is added:
//     the mean over batch pairs with level_i > level_j of
//     softplus(−(s_i − s_j)/RankScale). Rows of one Row.Group (the graded
//     samples of an item) are batched together by the Loader, so the term
//     orders an item's variants against each other; the
//     DefaultRewardRankWeight doc gives the measured effect.
//   - GRPO: −min(r·A, clip(r, 1−ε_low, 1+ε_high)·A) + β·k3, token mean, with
//     log-ratios clamped before Exp. With one update per rollout the ratio
//     is exactly 1, so the loss is ≈ 0 while its gradient is not.
//
// # Vision encoder and freezing
//
// EngineConfig.TrainVision (false by default) decides whether the vision
// encoder trains. Left false, it is frozen and outside the graphs, as it
// always was: Prep (NewPrep) runs it once per image and caches the
// features, which rows carry. Set, the encoder (patch embedding, 2-D
// rotary attention blocks, QuickGELU MLPs, the 2×2 merger) is inlined into
// every SFT, reward and GRPO graph and trained with the decoder: Prep
// (NewPrepFor the engine's config) keeps the processed pixels instead, the
// Loader sets each bucket's Grid from the rows, and MakeBatch feeds pixels.
// The graph has a static patch count, so every image of a run must have
// one size: images of two sizes are an error naming both grids (the
// pipeline builds all images at one image_size). A row without an image
// gets a zero image whose features are masked out; a batch with no image
// at all runs the decoder-only graph with the vision weights as unused
// inputs (zero gradient; AdamW's momentum and decay still move them, as
// for any zero gradient). GRPO rollouts and WriteBundle write every
// weight from the state, so a trained encoder reaches the rollout bundle
// and the exported one.
//
// EngineConfig.Freeze names what stays fixed: the modules "vision",
// "embeddings", "decoder" (layers and final norm) and "head" (LM head, or
// the reward head), or raw parameter-name prefixes. TrainVision with
// Freeze "vision" is the decoder-only mode (no vision part in the graph,
// cached features). With tie_word_embeddings the embeddings and the LM
// head are one tensor: freezing one module of the two without the other is
// an error.
//
// # Loop
//
// NewTrainer is the one way to set training up: it reads a bundle's
// weights into a State that trains TrainedParams (the decoder, and the
// vision encoder with TrainVision, less what EngineConfig.Freeze names) and builds the Engine over it; NewEngine
// refuses a State whose parameters disagree with its config.
//
// An Engine owns one ONNX Runtime session per bucket (built lazily) and a
// State holding parameters and moments double-buffered as ORT tensors: a
// step reads one copy and writes the other, then they swap, so nothing is
// copied through Go between steps. Supervised runs the loop: Loader
// (seeded shuffle, bucketing), the Schedule, metrics.jsonl, a progress bar,
// curves.png and checkpoints (safetensors weights and moments, loader RNG
// and step) from which Resume continues bit for bit. WriteBundle writes the
// trained weights into a copy of the bundle the server loads.
//
// # GRPO
//
// RunGRPO is the policy-optimisation loop (TRL's GRPOTrainer arithmetic):
// each rollout draws Batch/Group prompts, samples Group completions per
// prompt with the generation engine at GRPOConfig.Temperature (per-token
// log-probs of the full softmax at that temperature become old_logp; the
// train graph divides its logits by the same temperature), scores them
// with weighted RewardFuncs (ExactMatch: the letter inside <answer>;
// Format: <think>…</think><answer>…</answer>; ModelReward: the reward
// model's −6…10 score mapped to [0, 1]; the paper uses 0.8·RM + 0.2·match),
// turns rewards into advantages (r − mean)/(std + ε) within each group, and
// runs Iterations (μ) updates on the rollout. With β > 0 a frozen copy of
// the starting weights gives ref_logp for the k3 KL; with β = 0 no
// reference is built or run.
//
// Rollouts use the current weights: before each rollout the state's
// weights are written into a scratch copy of the bundle
// (OutDir/rollout_bundle, only the safetensors file is rewritten: the
// graphs point into it) and the bundle is reopened. For the small test
// model this costs about 43 ms against 91 ms for the whole rollout
// (BenchmarkGRPOPolicySync, BenchmarkGRPORollout), and it keeps one
// generation engine (models.VLM, KV cache, sampling) for serving and
// training instead of a second decoder fed weights as inputs.
//
// With μ = 1 the ratio is exactly 1 up to float rounding (the rollout's
// and the train graph's log-probs agree to about 5e-7), so the clipped
// surrogate equals −Σ w·A: close to 0, and not exactly 0 only because the
// token mean weighs completions by length, while its gradient Σ w·A·∇logp
// is not 0. μ > 1 lets the ratio move and the clip act. Checkpoints hold
// the sampling RNG and the rollout in progress, so Resume is bit for bit
// even between the μ updates of one rollout.
//
// # Usage
//
//	cfg := train.EngineConfig{Objective: train.SFT, TrainVision: true,
//		Freeze: []string{train.ModuleEmbeddings, train.ModuleHead}}
//	prep := train.NewPrepFor(vlm, cfg)
//	rows, err := prep.SFTRows(ctx, items)
//	t, err := train.NewTrainer(env, bundle, cfg)
//	defer t.Close()
//	rec, err := train.Supervised(ctx, t.Engine, prep.Tokens(), rows, train.RunConfig{
//		Steps: 200, Schedule: train.Schedule{LR: 1e-3, Warmup: 10, Decay: "cosine"},
//		Buckets: train.Buckets{Batch: 8, Lengths: []int{128, 192}}, OutDir: "out"})
//	_, err = t.WriteBundle(ctx, "out/bundle")
package train
