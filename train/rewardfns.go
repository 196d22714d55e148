package train

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
)

// Completion is one sampled answer to a GRPO prompt, as reward functions
// see it.
type Completion struct {
	Item   data.Item             // the prompt's item (question, options, gt_answer)
	Pixels *preprocessing.Pixels // the item's processed image; nil for text-only items
	Text   string                // the completion, special tokens removed
	Tokens []int                 // the generated ids (stop token included)
}

// RewardFunc scores a batch of completions, one reward per completion.
// Name is the metric name ("rewards/<name>/mean").
type RewardFunc interface {
	Name() string
	Rewards(ctx context.Context, cs []Completion) ([]float64, error)
}

// WeightedReward is one term of GRPO's reward: Weight·Func.
type WeightedReward struct {
	Func   RewardFunc
	Weight float64
}

// Names of the built-in reward functions.
const (
	RewardExactMatch  = "exact_match"  // ExactMatch
	RewardFormat      = "format"       // Format
	RewardModelScore  = "reward_model" // ModelReward
	rewardScaleLow    = -6.0           // the paper's irrelevant level
	rewardScaleHigh   = 10.0           // the paper's original level
	answerTagPattern  = `(?s)<answer>(.*?)</answer>`
	formatTagsPattern = `(?s)^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$`
)

var (
	answerTag  = regexp.MustCompile(answerTagPattern)
	formatTags = regexp.MustCompile(formatTagsPattern)
)

// ExactMatch rewards 1 when the content of the completion's last
// <answer>…</answer> is exactly the letter of the item's correct option
// (surrounding spaces ignored, case kept), else 0. Option text, "(B)" or a
// letter outside the tags earn nothing: the reward is for the paper's
// answer format, not for anything data.ExtractAnswer would accept.
type ExactMatch struct{}

// Name returns "exact_match".
func (ExactMatch) Name() string { return RewardExactMatch }

// Rewards scores each completion; an item without a valid answer is an
// error wrapping ErrData.
func (ExactMatch) Rewards(_ context.Context, cs []Completion) ([]float64, error) {
	out := make([]float64, len(cs))
	for i, c := range cs {
		idx, err := c.Item.AnswerIndex()
		if err != nil {
			return nil, fmt.Errorf("%w: item %s: %w", ErrData, c.Item.QuestionID, err)
		}
		m := answerTag.FindAllStringSubmatch(c.Text, -1)
		if len(m) > 0 && strings.TrimSpace(m[len(m)-1][1]) == data.Letters[idx:idx+1] {
			out[i] = 1
		}
	}
	return out, nil
}

// Format rewards 1 when the whole completion is
// "<think>…</think><answer>…</answer>" (white space around the blocks
// allowed), else 0.
type Format struct{}

// Name returns "format".
func (Format) Name() string { return RewardFormat }

// Rewards scores each completion.
func (Format) Rewards(_ context.Context, cs []Completion) ([]float64, error) {
	out := make([]float64, len(cs))
	for i, c := range cs {
		if formatTags.MatchString(c.Text) {
			out[i] = 1
		}
	}
	return out, nil
}

// ModelReward scores completions with a reward-model bundle (models.VLM
// with the reward role) and maps its score from the paper's −6…10 scale
// linearly onto [0, 1] (clamped): (s + 6) / 16. The map keeps the hybrid
// reward's terms on one scale, so the paper's 0.8·RM + 0.2·match weighs
// them as intended. An empty completion scores 0 without a model call.
type ModelReward struct {
	VLM   *models.VLM // the reward model; the caller closes it
	Batch int         // completions per forward pass; 0 means 16
}

// Name returns "reward_model".
func (ModelReward) Name() string { return RewardModelScore }

// Rewards scores each completion in batches.
func (r ModelReward) Rewards(ctx context.Context, cs []Completion) ([]float64, error) {
	if r.VLM == nil {
		return nil, fmt.Errorf("%w: reward_model needs an opened reward bundle", ErrConfig)
	}
	batch := r.Batch
	if batch <= 0 {
		batch = 16
	}
	out := make([]float64, len(cs))
	var reqs []models.RewardRequest
	var at []int
	flush := func() error {
		if len(reqs) == 0 {
			return nil
		}
		scores, err := r.VLM.Score(ctx, reqs)
		if err != nil {
			return fmt.Errorf("train: reward model: %w", err)
		}
		for k, s := range scores {
			out[at[k]] = NormalizeRewardScore(float64(s))
		}
		reqs, at = reqs[:0], at[:0]
		return nil
	}
	for i, c := range cs {
		if strings.TrimSpace(c.Text) == "" {
			continue
		}
		reqs = append(reqs, models.RewardRequest{Pixels: c.Pixels, Question: c.Item.Question,
			Options: c.Item.Options(), Response: c.Text})
		at = append(at, i)
		if len(reqs) == batch {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// NormalizeRewardScore maps a reward-model score from the paper's scale
// (−6 irrelevant … 10 original) to [0, 1], clamping outside it; NaN maps
// to 0.
func NormalizeRewardScore(s float64) float64 {
	if math.IsNaN(s) {
		return 0
	}
	return math.Min(1, math.Max(0, (s-rewardScaleLow)/(rewardScaleHigh-rewardScaleLow)))
}

// groupStats holds the rewards of one rollout and their group statistics.
type groupStats struct {
	Rewards    []float64            // total reward per completion
	Advantages []float64            // (r − group mean) / (group std + ε)
	PerFunc    map[string][]float64 // unweighted reward per function
	ZeroStd    float64              // share of groups whose rewards are all equal
	MeanStd    float64              // mean over groups of the group's std
}

// Advantages returns the group-normalised advantages of rewards laid out
// as consecutive groups of g: (r − mean) / (std + eps), std the unbiased
// (n − 1) standard deviation of the group as TRL computes it. It also
// returns the share of groups whose std is 0 (they carry no signal) and
// the mean group std. len(rewards) must be a multiple of g ≥ 2.
func Advantages(rewards []float64, g int, eps float64) (adv []float64, zeroStd, meanStd float64, err error) {
	if g < 2 || len(rewards)%g != 0 {
		return nil, 0, 0, fmt.Errorf("%w: %d rewards do not form groups of %d (group ≥ 2)", ErrConfig, len(rewards), g)
	}
	adv = make([]float64, len(rewards))
	groups := len(rewards) / g
	for lo := 0; lo < len(rewards); lo += g {
		grp := rewards[lo : lo+g]
		var mean float64
		for _, r := range grp {
			mean += r
		}
		mean /= float64(g)
		var ss float64
		for _, r := range grp {
			ss += (r - mean) * (r - mean)
		}
		std := math.Sqrt(ss / float64(g-1))
		if std < 1e-12 {
			zeroStd++
		}
		meanStd += std
		for j, r := range grp {
			adv[lo+j] = (r - mean) / (std + eps)
		}
	}
	return adv, zeroStd / float64(groups), meanStd / float64(groups), nil
}

// scoreCompletions runs every reward function and combines them.
func scoreCompletions(ctx context.Context, fns []WeightedReward, cs []Completion, g int, eps float64) (*groupStats, error) {
	st := &groupStats{Rewards: make([]float64, len(cs)), PerFunc: map[string][]float64{}}
	for _, wr := range fns {
		if wr.Weight == 0 {
			continue
		}
		rs, err := wr.Func.Rewards(ctx, cs)
		if err != nil {
			return nil, fmt.Errorf("train: reward %s: %w", wr.Func.Name(), err)
		}
		if len(rs) != len(cs) {
			return nil, fmt.Errorf("%w: reward %s returned %d rewards for %d completions", ErrData, wr.Func.Name(), len(rs), len(cs))
		}
		for i, r := range rs {
			if math.IsNaN(r) || math.IsInf(r, 0) {
				return nil, fmt.Errorf("%w: reward %s of completion %d is %g", ErrNonFinite, wr.Func.Name(), i, r)
			}
			st.Rewards[i] += wr.Weight * r
		}
		st.PerFunc[wr.Func.Name()] = rs
	}
	var err error
	st.Advantages, st.ZeroStd, st.MeanStd, err = Advantages(st.Rewards, g, eps)
	return st, err
}
