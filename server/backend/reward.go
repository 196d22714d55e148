package backend

import (
	"context"
	"fmt"
	"strings"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/server/model"
)

// Reward adapts a reward bundle to model.Reward: one batched forward pass
// (models.Score) per batch.
type Reward struct {
	m *Models
	s *slot
}

// Info implements model.Reward.
func (r *Reward) Info() model.Info { return info(r.s, "reward") }

// ScoreBatch implements model.Reward. Each sample's response is its
// reasoning as given when that already holds "<answer>", else
// "<think>{reasoning}</think><answer>{letter}</answer>".
func (r *Reward) ScoreBatch(ctx context.Context, in []model.ScoreInput) ([]float64, error) {
	v, done := r.s.use()
	defer done()
	imgs := make([]model.Image, len(in))
	for i, x := range in {
		imgs[i] = x.Image
	}
	px, err := r.m.pixels(ctx, v, imgs)
	if err != nil {
		return nil, mapErr("reward", err)
	}
	prompts := make([]models.Prompt, len(in))
	for i, x := range in {
		req := models.RewardRequest{Pixels: px[i], Question: x.Question, Options: x.Options, Response: Response(x.Reasoning, x.Answer)}
		if prompts[i], err = v.RewardPrompt(req); err != nil {
			return nil, mapErr(fmt.Sprintf("reward input %d", i), err)
		}
	}
	f, err := v.ImageFeatures(ctx, prompts)
	if err != nil {
		return nil, mapErr("reward", err)
	}
	scores, err := v.ScorePromptsWith(ctx, prompts, f)
	if err != nil {
		return nil, mapErr("reward", err)
	}
	out := make([]float64, len(scores))
	for i, s := range scores {
		out[i] = float64(s)
	}
	return out, nil
}

// Response builds the assistant turn the reward model reads from a
// sample's reasoning and answer index.
func Response(reasoning string, answer int) string {
	reasoning = models.StripControl(reasoning)
	if strings.Contains(reasoning, models.AnswerOpen) {
		return reasoning
	}
	letter := "?"
	if answer >= 0 && answer < len(data.Letters) {
		letter = data.Letters[answer : answer+1]
	}
	return models.ThinkOpen + strings.TrimSpace(reasoning) + models.ThinkClose + models.AnswerOpen + letter + models.AnswerClose
}
