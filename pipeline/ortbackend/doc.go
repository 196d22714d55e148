// Package ortbackend implements pipeline.Backend with the project's own
// models run through ONNX Runtime: bundles are exported by models.Export,
// generation, scoring and answering go through models.VLM, and training
// runs train-step graphs through train.Engine, writing the trained
// weights back into a copy of the bundle in the same safetensors layout
// (so the bundle's ONNX graphs stay valid).
//
// # Training targets
//
// The VQA policy is evaluated on the fast path (the option letter right
// after "<answer>", one forward pass), so its SFT rows are the fast
// prompt, the letter token, "</answer>" and <|im_end|>, encoded piece by
// piece so the letter is a token of its own exactly as the fast path reads
// it. The generator learns whole samples in models.SampleFormat after its
// instruction; the reward model regresses its head, read at the answer's
// closing <|im_end|> as models.VLM.Score reads it, on the graded levels.
//
// # Diagnostics
//
// The measurements behind the defaults (option shuffles, the pretrained
// base, the answer-letter weight, verified retraining, the synthesis
// pass, image grounding) are dated records in the repository's docs/
// folder, each with the command that produced it. The diagnostics that
// produced them are subcommands of `medgr2 diag` that read explicit
// paths: oracle (SFT on a run's whole labelled train split), reward
// (reward-model AUCs on a round's candidates), generator (parse rate,
// coherence and truth of generated samples) and letter (Backend.LetterLookup).
//
// # GRPO
//
// GRPO runs on the fast path too: a completion is one sampled option
// letter; its hybrid reward is RewardWeight·(reward model score of the
// completion with the templated reasoning of the chosen option, mapped
// from [−6, 10] to [0, 1]) + MatchWeight·exact match (+ FormatWeight).
// Rollouts of 64 prompts share a policy snapshot; with one update per
// rollout the ratio is exactly 1, so a loss near 0 with a non-zero
// gradient is expected.
//
// # Usage
//
//	be, err := ortbackend.New(ctx, ortbackend.Options{Arch: cfg.Model.Arch, Progress: os.Stderr})
//	if err != nil { … } // a *runtime.LibraryError when ONNX Runtime is missing
//	defer be.Close()
//	p, err := pipeline.New(cfg, be, pipeline.Options{Progress: os.Stderr})
package ortbackend
