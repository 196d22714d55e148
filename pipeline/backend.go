package pipeline

import (
	"context"
	"reflect"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/eval"
)

// Role names the three models of the loop. Bundles of each role live in
// their own stage folders.
type Role string

// The loop's model roles.
const (
	RoleVQA       Role = "vqa"       // the policy that answers questions
	RoleGenerator Role = "generator" // writes multiple-choice samples about images
	RoleReward    Role = "reward"    // scores samples on the paper's scale
)

// GenRequest asks the generator for samples about one unlabelled image:
// everything known about it except its label.
type GenRequest struct {
	Image      string // image file (absolute, or relative to the working directory)
	Modality   string // modality_type of the image's collection
	Dataset    string // dataset name of the image's collection
	QuestionID string // id given to the generated item
}

// Generated is one generator completion: the parsed item when it parses,
// the raw text either way.
type Generated struct {
	Item      data.Item `json:"item"`      // the parsed sample; the loop fills in question_id, modality, dataset and image_path; valid when Err is ""
	Reasoning string    `json:"reasoning"` // text between <think> and </think>
	Text      string    `json:"text"`      // the raw completion
	Err       string    `json:"error"`     // why the completion is not a sample; "" when it parsed
}

// Example is one supervised training example: an item and the reasoning
// that leads to its answer. Its target text for the VQA role is
// "<think>Reasoning</think><answer>X</answer>"; for the generator role it
// is the whole sample in models.SampleFormat.
type Example struct {
	Item      data.Item
	Reasoning string
}

// Graded is one reward-model training sample: an (image, question, options,
// answer, reasoning) tuple and its target level (10, 6, 0 or −6).
type Graded struct {
	Example
	Level float64 // target score
	Kind  string  // how it was made: "original", "wrong_letter", "shuffled_text", …
	// Group names the item a sample was derived from: the graded
	// variants of one item share it, so a trainer can batch them together
	// and rank them against each other; "" for a sample of its own.
	Group string
}

// TrainOptions are the shared knobs of every training call.
type TrainOptions struct {
	Epochs       int     `json:"epochs"`        // passes over the examples (GRPO: over the prompts)
	BatchSize    int     `json:"batch_size"`    // rows per step
	LearningRate float64 `json:"learning_rate"` // peak AdamW learning rate
	Seed         uint64  `json:"seed"`          // data order and sampling seed (mixed with the run seed)
	// MaxSteps, when above 0, caps the update steps of the call: training
	// stops after MaxSteps steps even if epochs remain, and the learning
	// rate schedule spans the capped total. It gives trainings on data of
	// different sizes the same compute (the policies of the loop train on
	// seed-only, filtered and unfiltered data), and bounds the time of the
	// largest. 0 runs every epoch.
	MaxSteps int `json:"max_steps,omitempty"`
	// OptionShuffles, for SFT (the VQA policy and the generator), adds
	// this many copies of each example with its options in a seeded random
	// order (the answer letter moves with its text), so a small model
	// learns which option holds the answer instead of memorising one
	// letter per question: the policy reads the letter off the options,
	// the generator writes the letter of the option its reasoning names.
	// 0 trains the examples as given; reward training ignores it.
	OptionShuffles int `json:"option_shuffles,omitempty"`
	// AnswerWeight, for generator SFT, is the loss weight of the answer
	// letter (the token after "<answer>") relative to each other token of
	// the sample. A sample has some 60 tokens and one letter, so with equal
	// weights the letter, the one token that must point back at the option
	// its reasoning names, barely moves the loss; 0 and 1 weigh every
	// token alike.
	AnswerWeight float64 `json:"answer_weight,omitempty"`
	// Freeze lists parameter-name prefixes or module names ("vision",
	// "embeddings", "decoder", "head"; see train.EngineConfig.Freeze) kept
	// fixed. Empty trains every decoder parameter, and the vision encoder
	// when TrainVision is set.
	Freeze []string `json:"freeze,omitempty"`
	// TrainVision trains the vision encoder too (train.EngineConfig.
	// TrainVision): the train graph runs it on each row's pixels. Off, the
	// encoder is fixed and its features are computed once.
	TrainVision bool `json:"train_vision,omitempty"`
}

// isZero reports whether t sets nothing (a nil and an empty Freeze alike).
func (t TrainOptions) isZero() bool {
	if len(t.Freeze) > 0 || t.TrainVision {
		return false
	}
	t.Freeze = nil
	return reflect.DeepEqual(t, TrainOptions{})
}

// GRPOOptions configure policy optimisation with the hybrid reward
// r = RewardWeight·norm(RM score) + MatchWeight·exact match
// (+ FormatWeight·format).
type GRPOOptions struct {
	TrainOptions
	Group        int     `json:"group"`          // completions per prompt (G)
	RewardWeight float64 `json:"reward_weight"`  // α, the paper's 0.8
	MatchWeight  float64 `json:"match_weight"`   // β, the paper's 0.2
	FormatWeight float64 `json:"format_weight"`  // weight of the think/answer format term; 0 drops it
	KLBeta       float64 `json:"kl_beta"`        // weight of the k3 KL to the reference; 0 drops it
	Temperature  float64 `json:"temperature"`    // rollout sampling temperature
	MaxNewTokens int     `json:"max_new_tokens"` // rollout length cap (generated rollouts)
}

// TrainStats summarise one training call; they go to the metrics log.
type TrainStats struct {
	Steps   int                  // optimizer updates run
	Curve   []float64            // loss per step (or per logged step)
	Metrics map[string]float64   // final metrics (loss, token_accuracy, reward, …)
	Series  map[string][]float64 // other per-step series (reward, kl, …)
}

// Initializer creates fresh bundles: the shared tokenizer (trained on the
// corpus texts) and randomly initialised models of a role.
type Initializer interface {
	// Tokenizer trains the project tokenizer (vocabSize entries, the
	// Qwen2-VL special tokens added) on the corpus texts and saves it to
	// path.
	Tokenizer(ctx context.Context, path string, corpus []string, vocabSize int) error
	// NewBundle writes a randomly initialised bundle of role into dir
	// using the tokenizer at tokenizerPath.
	NewBundle(ctx context.Context, dir string, role Role, tokenizerPath string, seed uint64) error
}

// Generator writes samples with a generator bundle.
type Generator interface {
	// Generate returns one Generated per request, in order; per-request
	// parse failures are reported in Generated.Err, not as an error.
	Generate(ctx context.Context, bundle string, reqs []GenRequest, opts SampleOptions) ([]Generated, error)
}

// SampleOptions control generation.
type SampleOptions struct {
	Temperature float64 // 0 is greedy
	// AnswerTemperature, when set, is the answer letter's temperature.
	AnswerTemperature *float64
	TopK              int    // 0 keeps all
	MaxNewTokens      int    // cap per completion
	Seed              uint64 // sampling seed
}

// Scorer scores samples with a reward bundle.
type Scorer interface {
	// Score returns one score per example, on the paper's scale.
	Score(ctx context.Context, bundle string, ex []Example) ([]float64, error)
}

// Trainer trains bundles. Each call reads the bundle at base and writes
// the trained bundle to out (a new folder), leaving base untouched.
type Trainer interface {
	// SFT fine-tunes a VQA or generator bundle on examples (role selects
	// the target text).
	SFT(ctx context.Context, base, out string, role Role, ex []Example, opts TrainOptions) (TrainStats, error)
	// TrainReward regresses the reward head on graded samples (MSE, plus
	// a pairwise ranking term between samples of one Group).
	TrainReward(ctx context.Context, base, out string, ex []Graded, opts TrainOptions) (TrainStats, error)
	// GRPO improves a VQA bundle on the items' questions with the hybrid
	// reward, scoring completions with the reward bundle.
	GRPO(ctx context.Context, base, out, reward string, items []data.Item, opts GRPOOptions) (TrainStats, error)
}

// Evaluator opens an answerer for a VQA bundle.
type Evaluator interface {
	// Answerer returns an eval.Answerer backed by the bundle and a
	// function that releases it.
	Answerer(ctx context.Context, bundle string) (eval.Answerer, func() error, error)
}

// Backend is everything the loop needs from the models: package
// pipeline/ortbackend provides the ONNX Runtime implementation; tests use
// fakes.
type Backend interface {
	Initializer
	Generator
	Scorer
	Trainer
	Evaluator
	VisionTrainer
}
