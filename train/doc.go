// Package train fine-tunes the project's vision-language models through
// ONNX Runtime: supervised fine-tuning (SFT), reward-model regression and
// GRPO, with train steps exported as standard ONNX graphs (forward +
// backward + clipping + AdamW, see graph.BuildTrainStep).
//
// # Graphs
//
// BuildGraph composes, for one static (batch, length) Bucket, the embedding
// lookup, the splice of precomputed image features at <|image_pad|> rows
// (image_embeds·mask + embed(ids)·(1−mask)) and the models package's
// decoder (inlined node by node, weights as inputs), then the objective:
//
//   - SFT: −Σ w·log p(label), w = answer tokens normalised to a token mean.
//   - Reward: Σ w·(score − level)², the reward head's score at the last
//     real token; levels 10 / 6 / 0 / −6 (GradedSamples builds them).
//   - GRPO: −min(r·A, clip(r, 1−ε_low, 1+ε_high)·A) + β·k3, token mean, with
//     log-ratios clamped before Exp. With one update per rollout the ratio
//     is exactly 1, so the loss is ≈ 0 while its gradient is not.
//
// The vision encoder is frozen: Prep runs it once per image and caches the
// features.
//
// # Loop
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
// # Usage
//
//	prep := train.NewPrep(vlm)
//	rows, err := prep.SFTRows(ctx, items)
//	ws, err := train.BundleWeights(bundle)
//	st, err := train.NewState(ws, train.DecoderParams(arch, false))
//	eng, err := train.NewEngine(env, train.EngineConfig{Objective: train.SFT, Arch: arch}, st)
//	rec, err := train.Supervised(ctx, eng, prep.Tokens(), rows, train.RunConfig{
//		Steps: 200, Schedule: train.Schedule{LR: 1e-3, Warmup: 10, Decay: "cosine"},
//		Buckets: train.Buckets{Batch: 8, Lengths: []int{128, 192}}, OutDir: "out"})
//	_, err = train.WriteBundle(ctx, bundle, "out/bundle", st.Weights())
package train
