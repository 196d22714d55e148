// Package pipeline runs the MedGR² loop end to end (arXiv 2508.20549):
// a small labelled seed set bootstraps a data generator and a reward
// model; the two are co-developed in rounds on an unlabelled image pool;
// the reward-filtered samples train a VQA policy by SFT and then GRPO;
// every policy is evaluated with data/eval and the run ends in a report.
//
// # Stages
//
// A run is a list of stages, each a folder under Config.OutDir/stages:
//
//   - data: the benchmark, built from labelled collections by data/builder
//     (train/validation/test split by image, held-out modalities);
//   - tokenizer: a BPE tokenizer trained on the benchmark's text;
//   - pretrain-vision, pretrain, pretrain-generator and pretrain-reward
//     (when Config.Pretrain.Items is set): the shared base models, the
//     vision encoder first (when Pretrain.Vision is on), then the VQA,
//     generator and (when Pretrain.Reward is on) reward bases, which can
//     train at once. The paper starts from a pretrained VLM; ours are tiny and
//     random, and a random policy never learns to point from an answer to
//     its letter on a few dozen seed items. So a VQA base and a generator
//     base are trained, text only, on real OmniMedVQA questions (items of
//     held-out modalities and of the real benchmark's datasets dropped):
//     the policy learns to answer a multiple-choice item, the generator
//     to write one. No benchmark label is used. With Pretrain.Grounding
//     the VQA base also answers, for each training image, the benchmark's
//     questions that its collection's metadata answers: which modality
//     produced it, and its anatomy where the collection has one
//     (GroundingItems; the only items of the stage that need the image).
//     The VQA base is
//     evaluated as its own report row; policies and generators start from
//     these bases, the reward model from random weights;
//   - per seed s, s<s>/seed: the seed set (SeedFraction of the training
//     images of the kept modalities, with their labelled items) and the
//     unlabelled pool (the other training images: image, modality and
//     dataset, no label);
//   - s<s>/round-0: generator SFT on the seed samples and reward-model
//     training on the seed samples graded at the paper's four levels
//     (GradeSamples: original 10, perturbed 6, incoherent 0, irrelevant −6);
//   - s<s>/round-k: generate on the pool → score → Filter (τ or top-k, and
//     at most MaxTemplateShare of the accepted samples per question
//     template) → verify the accepted samples (Config.Verify: by default
//     the reasoning must name the chosen option, Coherent) → retrain the
//     reward model (MSE plus a pairwise ranking term between the graded
//     variants of one item; seed grades, the verified samples and their
//     perturbations, the accepted samples that failed verification and
//     unparseable completions at 0 as hard negatives) → SFT the generator
//     on seed + verified samples.
//     Each round logs samples generated, acceptance rate and the true
//     accuracy of the accepted samples, measured against the held-back
//     labels of the pool images (Truth; never shown to a model);
//   - s<s>/synthesis (when Config.Synthesis.PerImage > 0): the paper's
//     data-generation step. The last round's generator writes samples over
//     the pool, the last round's reward model scores them and Filter
//     accepts; nothing is retrained. The unfiltered and filtered policies
//     then train on its parsed and accepted samples (with the seed items)
//     instead of the rounds' samples, so both come from the co-developed
//     generator;
//   - s<s>/baselines and four policies, each evaluated on the test split,
//     the held-out modalities and the real OmniMedVQA items: SFT on the
//     seed items (from the VQA base; random weights when pretraining is
//     off), on all generated items (unfiltered), on the reward-filtered
//     items (both from the base too or, with Config.PolicyFromSeed, from
//     the seed-items policy), and the filtered policy after GRPO with the
//     hybrid reward (0.8·reward model + 0.2·exact match by default);
//   - report: report.md (results table with mean ± sd over seeds, image
//     use of every VQA model (eval.ImageSensitivity on the test split),
//     round log, claim checks, stage times), results.json, metrics.jsonl and the
//     curves rounds.png and training.png, in the stage folder and OutDir.
//
// # Running stages at once
//
// Options.Jobs stages run at once, each as soon as the stages it reads
// are done, the earliest in plan order first: with two jobs the
// generator base and then the seeds' rounds train beside the VQA base.
// A stage's outputs depend only on what it reads, so the schedule never
// changes results (TestJobsSameResults); `medgr2 pipeline --jobs` sets it
// (default the cores, with one ONNX Runtime thread each).
//
// # Resuming
//
// Each stage has a hash over its name, the config it reads, the hashes of
// the stages it depends on and the identity of the code it runs
// (Options.Code: CodeBenchmark, CodeLoop, CodeBackend; by default the
// binary's BuildIdentity, its git commit or the hash of its executable). A
// stage runs in a ".partial" folder that is renamed into place when it
// succeeds, then the state file (state.json, written atomically) records
// it. A rerun skips every stage recorded with the same hash, so an
// interrupted run resumes at the first unfinished stage, and a config or
// code change reruns exactly the stages downstream of it.
//
// # Models
//
// The loop reaches the models only through the Backend interface
// (Initializer, Generator, Scorer, Trainer, Evaluator), so its logic is
// tested with fakes; package pipeline/ortbackend implements it with the
// project's own models through ONNX Runtime.
//
// # Usage
//
//	cfg, err := pipeline.LoadConfig("configs/pipeline.json")
//	if err != nil { … }
//	be, err := ortbackend.New(ctx, ortbackend.Options{Arch: cfg.Model.Arch})
//	if err != nil { … }
//	defer be.Close()
//	p, err := pipeline.New(cfg, be, pipeline.Options{Progress: os.Stderr})
//	if err != nil { … }
//	report, err := p.Run(ctx) // OutDir/report.md
//
// or from the command line: medgr2 pipeline --config configs/pipeline.json.
package pipeline
