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
// # Why policies scored at chance (diagnosis)
//
// An oracle run (oracle_test.go, build tag oracle: SFT of a fresh
// 64-wide, 3-layer policy on all 976 labelled train items of the kept
// modalities, 15 epochs at 3e-3, 620 steps) stayed at chance: validation
// 24.7%, test 26.3%, even 26.7% on its own training items, final loss
// 0.461 = ln 4 / 3 (the letter at chance, "</answer>" and <|im_end|>
// learnt), predicting only A or D. The rows are right (the fast-path
// parity test holds, gold letters are balanced 25% each, the loss covers
// the letter), and the frozen random vision encoder does separate images
// (features std 0.043, RMS distance 0.017 between images, 40% of their
// scale). The task is the problem: with each question seen once in one
// option order, a tiny model can memorise a letter per question but has
// no pressure to learn which option holds the answer (a pointer from the
// letter slot to the option text and back to its letter).
//
// Fix: pipeline.TrainOptions.OptionShuffles adds option-order-shuffled
// copies of each VQA example (the gold text keeps its identity, its
// letter moves). The same oracle with 3 copies (8 epochs, 1960 steps)
// reaches validation 34.6% (anatomy 53.2%, modality 29.8%, disease
// 34.9%, other attributes 26.1%); with 7 copies (3912 steps) validation
// 65.9% (anatomy 89.4%, modality 73.4%, disease 53.5%, other 50.3%),
// train 66.7%, test 63.3% (the majority-answer text prior: 68.8% on the
// test split). A 10× learning rate (1e-2) collapses to always "D". The
// default config uses 7 copies (chosen on validation). The loop's own
// policies train on far fewer items (the 5% seed and generated samples).
//
// Those few items are not enough for a random policy to learn the
// pointer: from scratch every policy row stayed at chance (test 25–30%).
// The pipeline's pretrain stage (pipeline.PretrainConfig) therefore
// teaches it first, text only, on 2,026 real OmniMedVQA questions (4
// epochs × 8 option orders, 4,064 steps, about 5 minutes on 2 cores). The
// base alone is no better than chance on our benchmark (its text prior
// favours the OmniMedVQA answers our builder uses as distractors), but SFT
// from it on the 50 seed items reached 38–53% on the test split where the
// same SFT from random weights stayed at 25%.
//
// # Why the reward filter did not raise accuracy (diagnosis)
//
// The rounds log marks each parsed sample Coherent when its reasoning
// names the option its letter chooses (pipeline.Coherent; a measurement,
// never a filter). Coherent samples were 71–100% correct against the
// held-back labels and incoherent ones 2–29%, but only a sixth to a half
// of the parsed samples were coherent: the generator stated the right
// finding and then picked a letter almost at random. The reward model
// told the two apart only weakly (AUC 0.55–0.64 on round 1's candidates,
// rmdiag_test.go, build tag rmdiag). Showing the chosen option's text
// after the letter (models.RewardResponse) turns the reward model's check
// into a comparison of two nearby texts, and is kept for that reason.
//
// # The generator's answer letter (fix)
//
// gendiag_test.go (build tag gendiag) measures the letter lookup on its
// own: given a validation item's sample text up to "<answer>", with the
// options shuffled, how often is the most likely letter the one of the
// option the reasoning names? For the earlier generators it was 24.5–
// 32.5%, no better than chance, and option-shuffled copies of the
// generator's SFT rows (TrainOptions.OptionShuffles, as for the policy)
// left it at 26.5%: the letter is one token of some 60 in a sample, so
// the loss hardly sees it. Weighting that token 20 times
// (TrainOptions.AnswerWeight, train.Row.Weights) raised it to 49.5% after
// the seed round and 57.5% after round 3, and the parsed samples' true
// accuracy from 29–37% to 59–72% (one seed each). Taking the letter
// greedily while the rest is sampled (GenerateConfig.AnswerTemperature,
// generate.Options.TemperatureAfter) added 3–8 points of coherence on the
// same generators.
//
// Two more changes followed from the rounds log. Most unparsed samples
// repeated an option; the loop now drops the repeat
// (data.Item.DedupeOptions), which lifted parsed samples from 29–50 to
// 114–117 of 120. And the graded set's contradiction variant used to
// repeat the answer ("does not show X"): a reasoning that names the
// chosen option then marked both an original (10) and a level-0 sample,
// and with every variant kind built per original the reward model scored
// coherent samples below incoherent ones, so the filter kept the worse
// half (accepted true accuracy 34–39% against 39–49% for all parsed).
// The variant now rejects the answer without naming it; on the same
// pretrained bases the accepted samples' true accuracy became 44%, 56%
// and 57% over the three rounds against 43%, 45% and 50% for all parsed.
// Run-to-run variation stays large: the same VQA pretraining config gave
// 19.2% and 31.2% on the test split in two runs.
//
// # Verified retraining data
//
// With the generator fixed, three seeds of the default config still
// showed no filter gain (accepted 43.9% true against 44.9% for all
// parsed; the reward model's AUC of coherent over incoherent samples
// 0.51–0.57). Each round retrained the reward model with every accepted
// sample as a level-10 original, about half of them incoherent, so the
// reward model was taught its own mistakes. pipeline.Config.Verify
// ("coherent", the default) now retrains the reward model and the
// generator only on the accepted samples whose reasoning names the option
// their letter chooses (pipeline.Coherent, a check of the sample's text
// that reads no label), and gives the reward model the others, its own
// false positives, as incoherent hard negatives. The filter itself is
// unchanged: it still keeps the reward model's top half. Over three
// seeds the accepted samples' true accuracy became 65.5% against 61.7%
// for all parsed, rising across the rounds in every seed (54→79%,
// 61→71%, 43→81%), and the reward model's AUC of coherent over
// incoherent samples on round 3's candidates 0.60–0.65. The VQA policy
// did not benefit in turn (see the README's table).
//
// # The synthesis pass and the filtered policy's data
//
// The policies used to train on the rounds' samples, half of them from
// the early generators. pipeline.Config.Synthesis adds the paper's
// data-generation step: the final generator writes two samples per pool
// image, the final reward model scores them, and the policies train on
// those (the unfiltered row on every parsed one, the filtered row on the
// accepted ones that pass verification). On the round-3 models of the
// earlier 3-seed run, the synthesis samples were 71.1–83.8% true against
// the rounds' 61.7%, and the verified ones 89.2–97.0%. The reward model
// adds little on top of verification there: at τ = 5 it keeps 85–95% of
// the samples, and a top-half rule kept mostly one easy answer
// ("breast": 121 of 170 accepted), which cost the filtered policy 13
// points on the test split in one seed.
//
// # Image use (diagnosis)
//
// eval.ImageSensitivity answers every test item again with its image
// swapped for one of another modality. The policies trained before
// image grounding moved their answers by a mean total variation of
// 0.002–0.029 and changed 0–5% of their predictions, with the same
// accuracy either way: they answered from the text alone. Their base
// learnt from text only, and nothing in the generated samples needs the
// image (the generator writes the answer the modality implies).
// pipeline.PretrainConfig.Grounding adds one item per training image
// asking which kept modality produced it: the base's answers then moved
// by 0.149 (0.014 without), but SFT on the generated samples brought the
// policies back to 0.007–0.026. Adding the same items to every policy's
// SFT data (pipeline.Config.PolicyGrounding) kept them looking (0.062–
// 0.075, 11–25% of predictions changed in one seed) without making them
// more accurate: the test accuracy with swapped images was 39.2% against
// 36.7% with their own for the seed policy, 50.4% against 52.1% for the
// unfiltered one. What a frozen random encoder sees in a 56-pixel image
// tells the two kept modalities apart but not the findings the questions
// ask about, so PolicyGrounding is off by default (it also makes each
// policy stage 45–160% longer).
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
