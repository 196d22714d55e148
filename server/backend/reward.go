package backend

import (
	"context"
	"hash/fnv"
	"image"
	"strings"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/server/model"
)

// Reward adapts a reward bundle to model.Reward: one batched forward pass
// (models.Score) per batch.
type Reward struct {
	m *Models
	v *models.VLM
}

// Info implements model.Reward.
func (r *Reward) Info() model.Info { return info(r.v, "reward") }

// ScoreBatch implements model.Reward. Each sample's response is its
// reasoning as given when that already holds "<answer>", else
// "<think>{reasoning}</think><answer>{letter}</answer>".
func (r *Reward) ScoreBatch(ctx context.Context, in []model.ScoreInput) ([]float64, error) {
	imgs := make([]image.Image, len(in))
	for i, x := range in {
		imgs[i] = x.Image
	}
	px, err := r.m.pixels(ctx, r.v, imgs)
	if err != nil {
		return nil, mapErr("reward", err)
	}
	reqs := make([]models.RewardRequest, len(in))
	for i, x := range in {
		reqs[i] = models.RewardRequest{Pixels: px[i], Question: x.Question, Options: x.Options, Response: Response(x.Reasoning, x.Answer)}
	}
	scores, err := r.v.Score(ctx, reqs)
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
	reasoning = stripControl(reasoning)
	if strings.Contains(reasoning, models.AnswerOpen) {
		return reasoning
	}
	letter := "?"
	if answer >= 0 && answer < len(data.Letters) {
		letter = data.Letters[answer : answer+1]
	}
	return models.ThinkOpen + strings.TrimSpace(reasoning) + models.ThinkClose + models.AnswerOpen + letter + models.AnswerClose
}

// Generator adapts a generator bundle to model.Generator: every requested
// item is one row of one batched generation (models.GenerateSamples,
// sampled at the configured temperature with top-p 0.95).
type Generator struct {
	m           *Models
	v           *models.VLM
	maxTokens   int
	temperature float32
}

// Info implements model.Generator.
func (g *Generator) Info() model.Info { return info(g.v, "generator") }

// GenerateBatch implements model.Generator. Completions that do not parse
// as a sample (models.ParseSample) are dropped, so an input may receive
// fewer items than it asked for (none from an untrained model). The
// metadata keys "modality" and "dataset" go into the instruction.
func (g *Generator) GenerateBatch(ctx context.Context, in []model.GenerateInput) ([][]model.Item, error) {
	imgs := make([]image.Image, len(in))
	for i, x := range in {
		imgs[i] = x.Image
	}
	px, err := g.m.pixels(ctx, g.v, imgs)
	if err != nil {
		return nil, mapErr("generator", err)
	}
	var reqs []models.GeneratorRequest
	var owner []int
	seed := fnv.New64a()
	for i, x := range in {
		seed.Write([]byte(x.ImageHash))
		for range max(x.NumItems, 1) {
			reqs = append(reqs, models.GeneratorRequest{Pixels: px[i], Modality: x.Metadata["modality"], Dataset: x.Metadata["dataset"]})
			owner = append(owner, i)
		}
	}
	samples, err := g.v.GenerateSamples(ctx, reqs, models.ReasonOptions{MaxNewTokens: g.maxTokens,
		Temperature: g.temperature, TopP: 0.95, Seed: seed.Sum64()})
	if err != nil {
		return nil, mapErr("generator", err)
	}
	out := make([][]model.Item, len(in))
	for k, s := range samples {
		if s.Err != nil {
			continue
		}
		ans, err := s.Item.AnswerIndex()
		if err != nil {
			continue
		}
		i := owner[k]
		out[i] = append(out[i], model.Item{Question: s.Item.Question, Options: s.Item.Options(), Answer: ans, Reasoning: Response(s.Reasoning, ans)})
	}
	return out, nil
}
