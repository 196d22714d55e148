package backend

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime/generate"
	"github.com/medgr2/medgr2/server/model"
	"github.com/medgr2/medgr2/tokenizer"
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
	imgs := make([]model.Image, len(in))
	for i, x := range in {
		imgs[i] = x.Image
	}
	px, err := r.m.pixels(ctx, r.v, imgs)
	if err != nil {
		return nil, mapErr("reward", err)
	}
	prompts := make([]models.Prompt, len(in))
	for i, x := range in {
		req := models.RewardRequest{Pixels: px[i], Question: x.Question, Options: x.Options, Response: Response(x.Reasoning, x.Answer)}
		if prompts[i], err = r.v.RewardPrompt(req); err != nil {
			return nil, mapErr(fmt.Sprintf("reward input %d", i), err)
		}
	}
	f, err := r.v.ImageFeatures(ctx, prompts)
	if err != nil {
		return nil, mapErr("reward", err)
	}
	scores, err := r.v.ScorePromptsWith(ctx, prompts, f)
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

// Generator adapts a generator bundle to model.Generator: every requested
// item is one row of one batched generation of the generator instruction
// (models.GeneratorInstruction, sampled at the configured temperature with
// top-p 0.95, seeded by the image hash and item index), parsed with
// models.ParseSample.
type Generator struct {
	m           *Models
	v           *models.VLM
	maxTokens   int
	temperature float32
}

// Info implements model.Generator.
func (g *Generator) Info() model.Info { return info(g.v, "generator") }

// GenerateBatch implements model.Generator. The question, options and
// reasoning are sampled; the answer letter after "<answer>" is the
// generator's most likely one (when "<answer>" is one token), so it
// follows the reasoning as well as the model can. A repeated option is
// dropped (data.Item.DedupeOptions). Completions that do not parse as a
// sample (models.ParseSample) or are left with fewer than two options are
// dropped, so an input may receive fewer items than it asked for (none
// from an untrained model). The metadata keys "modality" and "dataset" go
// into the instruction.
func (g *Generator) GenerateBatch(ctx context.Context, in []model.GenerateInput) ([][]model.Item, error) {
	imgs := make([]model.Image, len(in))
	for i, x := range in {
		imgs[i] = x.Image
	}
	px, err := g.m.pixels(ctx, g.v, imgs)
	if err != nil {
		return nil, mapErr("generator", err)
	}
	var letter map[int]float32
	if id, err := g.v.AnswerToken(); err == nil {
		letter = map[int]float32{id: 0}
	}
	var prompts []models.Prompt
	var opts []generate.Options
	var owner []int
	for i, x := range in {
		p, err := g.prompt(x, px[i])
		if err != nil {
			return nil, mapErr(fmt.Sprintf("generator input %d", i), err)
		}
		seed := fnv.New64a()
		seed.Write([]byte(x.ImageHash))
		for k := range max(x.NumItems, 1) {
			prompts = append(prompts, p)
			opts = append(opts, generate.Options{MaxNewTokens: g.maxTokens, Temperature: g.temperature, TopP: 0.95,
				Seed: seed.Sum64() + uint64(k), StopTokens: g.v.Manifest().SpecialTokens.EOS,
				StopStrings: []string{models.AnswerClose}, Detokenize: g.detok, TemperatureAfter: letter})
			owner = append(owner, i)
		}
	}
	f, err := g.v.ImageFeatures(ctx, prompts)
	if err != nil {
		return nil, mapErr("generator", err)
	}
	res, err := g.v.GenerateStream(ctx, prompts, opts, f, nil)
	if err != nil {
		return nil, mapErr("generator", err)
	}
	samples := make([]models.Sample, len(res))
	for k, r := range res {
		samples[k], samples[k].Err = models.ParseSample(g.detok(r.Tokens))
	}
	out := make([][]model.Item, len(in))
	for k, s := range samples {
		if s.Err != nil {
			continue
		}
		s.Item.DedupeOptions()
		ans, err := s.Item.AnswerIndex()
		if err != nil || len(s.Item.Options()) < 2 {
			continue
		}
		i := owner[k]
		out[i] = append(out[i], model.Item{Question: s.Item.Question, Options: s.Item.Options(), Answer: ans, Reasoning: Response(s.Reasoning, ans)})
	}
	return out, nil
}

// prompt encodes the generator instruction for one image.
func (g *Generator) prompt(x model.GenerateInput, px *preprocessing.Pixels) (models.Prompt, error) {
	p := tokenizer.VQAPrompt{System: g.v.Manifest().Prompt.System,
		Question: models.GeneratorInstruction(x.Metadata["modality"], x.Metadata["dataset"]), ImageTokens: px.ImageTokens()}
	enc, err := g.v.Tokenizer().EncodePrompt(p)
	if err != nil {
		return models.Prompt{}, fmt.Errorf("%w: %w", models.ErrBadRequest, err)
	}
	out := models.Prompt{IDs: enc.IDs}
	if px != nil {
		out.Images = []*preprocessing.Pixels{px}
	}
	return out, nil
}

// detok decodes generated ids without special tokens.
func (g *Generator) detok(ids []int) string {
	s, _ := g.v.Tokenizer().Decode(ids, true) // generated ids are in the vocabulary
	return s
}
