package train

import (
	"fmt"
	"strings"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
)

// Names of the batch inputs and metric outputs of the trainer's graphs.
const (
	InInputIDs     = models.InputIDs      // int64 [B, S]: prompt (and completion) tokens, right-padded
	InImageEmbeds  = "image_embeds"       // float32 [B, S, H]: vision features at <|image_pad|> rows, 0 elsewhere
	InImageMask    = "image_mask"         // float32 [B, S, 1]: 1 where image_embeds replaces the token embedding
	InPixelValues  = models.PixelValues   // float32 [B·P, 1176]: each row's image patches (vision in the graph)
	InGridTHW      = models.GridTHW       // int64 [B, 3]: each row's patch grid (vision in the graph)
	InImageIndex   = "image_index"        // int64 [B, S]: row of the encoder's output each position reads (vision in the graph)
	InAttention    = models.AttentionMask // int64 [B, S]: 1 for real tokens
	InPositions    = models.PositionIDs   // int64 [3, B, S]: multimodal RoPE positions
	InLabels       = "labels"             // int64 [B, S]: the token each position predicts (ids shifted left)
	InLabelWeights = "label_weights"      // float32 [B, S]: loss weight per position, summing to 1 over the batch
	InTargets      = "targets"            // float32 [B]: reward-model regression targets
	InRowWeights   = "row_weights"        // float32 [B]: per-row loss weight, summing to 1
	InOldLogp      = "old_logp"           // float32 [B, S]: rollout log-probs of labels
	InRefLogp      = "ref_logp"           // float32 [B, S]: reference-model log-probs (only when β > 0)
	InAdvantages   = "advantages"         // float32 [B, 1]: group-normalised advantages

	OutLoss       = "loss"           // float32 scalar
	OutAccuracy   = "token_accuracy" // SFT: weighted share of positions whose argmax is the label
	OutScores     = models.Scores    // reward: the head's scores [B]
	OutLogp       = "logp"           // log-prob of each label [B, S]
	OutKL         = "kl"             // GRPO: token-mean k3 KL to the reference (0 when β = 0)
	OutClipLow    = "clip_ratio/low_mean"
	OutClipHigh   = "clip_ratio/high_mean"
	OutClipRegion = "clip_ratio/region_mean"
)

// Objective selects the loss a train graph computes.
type Objective string

// The trainer's objectives.
const (
	SFT    Objective = "sft"    // cross-entropy on answer tokens
	Reward Objective = "reward" // MSE of the reward head's score against the sample's level
	GRPO   Objective = "grpo"   // clipped-ratio policy gradient with optional k3 KL
)

// LossConfig holds the loss settings baked into a graph as constants.
type LossConfig struct {
	// Temperature divides the logits before the log-softmax (GRPO: the
	// rollout's sampling temperature, so log-probs match the engine's); 0
	// means 1.
	Temperature float64
	// EpsLow and EpsHigh bound the ratio to [1−EpsLow, 1+EpsHigh] (GRPO).
	EpsLow, EpsHigh float64
	// Beta weighs the k3 KL to the reference (GRPO); 0 drops the term and
	// the ref_logp input.
	Beta float64
	// LogRatioClamp bounds log-ratios before Exp; 0 means 20.
	LogRatioClamp float64
	// RankWeight weighs the reward model's pairwise ranking term (see
	// rewardLoss in graphs_reward.go): the mean, over the batch's pairs
	// (i, j) with target_i > target_j, of softplus(−(s_i − s_j)/RankScale).
	// 0 (the default) keeps the pure MSE graph.
	RankWeight float64
	// RankScale divides score differences in the ranking term (score units,
	// the paper's −6…10 scale); 0 means 1.
	RankScale float64
}

// DecoderParams returns the decoder parameters of a train graph: the
// embedding table and every decoder weight (the reward head for reward),
// in file order. VisionParams are the encoder's, which the graphs hold
// only when the encoder trains (EngineConfig.TrainVision).
func DecoderParams(cfg models.ArchConfig, reward bool) []string {
	var names []string
	for _, s := range models.WeightSpecs(cfg, reward) {
		if !strings.HasPrefix(s.Name, "visual.") {
			names = append(names, s.Name)
		}
	}
	return names
}

// forward is the part every objective shares: the spliced embeddings run
// through the models package's decoder.
type forward struct {
	g      *graph.Graph
	cfg    models.ArchConfig
	b      Bucket
	head   *graph.Value // logits [B, S, V] or scores [B]
	labels *graph.Value
}

// buildForward declares the batch inputs and the parameters and inlines
// models.BuildDecoder (fixed dims, weights as inputs). With a bucket Grid
// it inlines models.BuildVision too: the encoder runs on the batch's
// pixel_values [B·P, 1176] (P patches per row) and its output rows
// [B·P/4, H] are gathered into [B, S, H] by image_index; image_mask keeps
// the splice as without vision.
func buildForward(name string, cfg models.ArchConfig, b Bucket, reward bool) (*forward, error) {
	if b.Batch <= 0 || b.Length <= 1 {
		return nil, fmt.Errorf("%w: bucket %d×%d (batch ≥ 1, length ≥ 2)", ErrConfig, b.Batch, b.Length)
	}
	dec, err := models.BuildDecoder(cfg, models.BuildOptions{ParamsAsInputs: true, Reward: reward,
		Batch: graph.D(int64(b.Batch)), Seq: graph.D(int64(b.Length)),
		Past: graph.Dim{Size: 0, Param: "past"}}) // a named 0: BuildOptions reads the zero Dim as "symbolic"
	if err != nil {
		return nil, fmt.Errorf("train: build %s: %w", name, err)
	}
	g := graph.New(name)
	B, S, H := int64(b.Batch), int64(b.Length), int64(cfg.HiddenSize)
	embedW := g.Input(DecoderParams(cfg, reward)[0], graph.Float32, graph.Dims(int64(cfg.VocabSize), H))
	ids := g.Input(InInputIDs, graph.Int64, graph.Dims(B, S))
	img, err := imageEmbeds(g, cfg, b)
	if err != nil {
		return nil, err
	}
	imgMask := g.Input(InImageMask, graph.Float32, graph.Dims(B, S, 1))
	bind := map[string]*graph.Value{
		models.InputsEmbeds: g.Add(g.Mul(g.Gather(embedW, ids, 0), g.Sub(g.ScalarFloat32(1), imgMask)), g.Mul(img, imgMask)),
		InAttention:         g.Input(InAttention, graph.Int64, graph.Dims(B, S)),
		InPositions:         g.Input(InPositions, graph.Int64, graph.Dims(3, B, S)),
	}
	kvh, hd := int64(cfg.NumKVHeads), int64(cfg.HeadDim())
	empty := g.Const(&graph.Tensor{DType: graph.Float32, Dims: []int64{B, kvh, 0, hd}, F32: []float32{}})
	for i := range cfg.NumLayers {
		bind[models.PastKey(i)], bind[models.PastValue(i)] = empty, empty
	}
	outs, err := inline(g, dec, bind, map[string]int64{"total_sequence_length": S, "past_sequence_length": 0})
	if err != nil {
		return nil, err
	}
	f := &forward{g: g, cfg: cfg, b: b, head: outs[models.Logits]}
	if reward {
		f.head = outs[models.Scores]
	}
	return f, g.Err()
}

// imageEmbeds returns the image features [B, S, H] spliced at image rows:
// the image_embeds input, or, with a bucket Grid, the inlined vision
// encoder's output gathered by image_index.
func imageEmbeds(g *graph.Graph, cfg models.ArchConfig, b Bucket) (*graph.Value, error) {
	B, S, H := int64(b.Batch), int64(b.Length), int64(cfg.HiddenSize)
	if b.Grid == [3]int64{} {
		return g.Input(InImageEmbeds, graph.Float32, graph.Dims(B, S, H)), nil
	}
	P, unit := int64(b.patches()), int64(cfg.Vision.MergeUnit())
	if b.Grid[0] <= 0 || b.Grid[1] <= 0 || b.Grid[2] <= 0 || P%unit != 0 {
		return nil, fmt.Errorf("%w: bucket image grid %v (want positive t, h, w whose patch count is a multiple of %d)", ErrConfig, b.Grid, unit)
	}
	N := B * P
	vis, err := models.BuildVision(cfg, models.BuildOptions{ParamsAsInputs: true, NumPatches: graph.D(N)})
	if err != nil {
		return nil, fmt.Errorf("train: build vision: %w", err)
	}
	bind := map[string]*graph.Value{
		InPixelValues: g.Input(InPixelValues, graph.Float32, graph.Dims(N, int64(cfg.Vision.PatchDim()))),
		InGridTHW:     g.Input(InGridTHW, graph.Int64, graph.Dims(B, 3)),
	}
	outs, err := inline(g, vis, bind, map[string]int64{"num_patches": N, "num_images": B, "num_image_tokens": N / unit})
	if err != nil {
		return nil, err
	}
	idx := g.Input(InImageIndex, graph.Int64, graph.Dims(B, S))
	return g.Gather(outs[models.ImageFeatures], idx, 0), nil
}

// labelLogp returns log softmax(logits/T)[label] per position: [B, S].
func (f *forward) labelLogp(temperature float64) *graph.Value {
	g := f.g
	B, S := int64(f.b.Batch), int64(f.b.Length)
	f.labels = g.Input(InLabels, graph.Int64, graph.Dims(B, S))
	logits := f.head
	if temperature > 0 && temperature != 1 {
		logits = g.Div(logits, g.ScalarFloat32(float32(temperature)))
	}
	lp := g.LogSoftmax(logits, -1)
	return g.Reshape(g.GatherElements(lp, g.Unsqueeze(f.labels, 2), 2), B, S)
}

// BuildGraph returns the forward graph of objective obj for bucket b: batch
// inputs (see the In* names), the trained parameters as inputs, and the
// outputs "loss" and the objective's metrics. graph.BuildTrainStep turns it
// into a train step; run as it is, it is the objective's forward pass.
func BuildGraph(obj Objective, cfg models.ArchConfig, b Bucket, lc LossConfig) (*graph.Graph, error) {
	f, err := buildForward(string(obj)+"_train", cfg, b, obj == Reward)
	if err != nil {
		return nil, err
	}
	switch obj {
	case SFT:
		f.sftLoss()
	case Reward:
		if err := lc.validateRank(); err != nil {
			return nil, err
		}
		f.rewardLoss(lc)
	case GRPO:
		if err := lc.validate(); err != nil {
			return nil, err
		}
		f.grpoLoss(lc)
	default:
		return nil, fmt.Errorf("%w: unknown objective %q (want sft, reward or grpo)", ErrConfig, obj)
	}
	if err := f.g.Err(); err != nil {
		return nil, fmt.Errorf("train: build %s graph: %w", obj, err)
	}
	return f.g, nil
}

// BuildLogpGraph returns a forward-only graph giving the log-prob of each
// label ("logp" [B, S]) at the given temperature: the GRPO reference.
func BuildLogpGraph(cfg models.ArchConfig, b Bucket, temperature float64) (*graph.Graph, error) {
	f, err := buildForward("logp", cfg, b, false)
	if err != nil {
		return nil, err
	}
	f.g.Output(OutLogp, f.labelLogp(temperature))
	if err := f.g.Err(); err != nil {
		return nil, fmt.Errorf("train: build logp graph: %w", err)
	}
	return f.g, nil
}

// sftLoss: loss = −Σ w·log p(label); token_accuracy = Σ w·[argmax = label].
func (f *forward) sftLoss() {
	g := f.g
	B, S := int64(f.b.Batch), int64(f.b.Length)
	lp := f.labelLogp(1)
	w := g.Input(InLabelWeights, graph.Float32, graph.Dims(B, S))
	g.Output(OutLoss, g.Neg(g.ReduceSum(g.Mul(lp, w), nil, false)))
	hit := g.Cast(g.Equal(g.ArgMax(f.head, -1, false), f.labels), graph.Float32)
	g.Output(OutAccuracy, g.ReduceSum(g.Mul(hit, w), nil, false))
}
