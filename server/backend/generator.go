package backend

import (
	"context"
	"hash/fnv"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/server/model"
)

// Generator adapts a generator bundle to model.Generator: every requested
// item is one row of one batched generation of the generator instruction
// (models.GeneratorInstruction, sampled at the configured temperature with
// top-p 0.95, seeded by the image hash and item index), parsed with
// models.ParseSample.
type Generator struct {
	m           *Models
	s           *slot
	maxTokens   int
	temperature float32
}

// Info implements model.Generator.
func (g *Generator) Info() model.Info { return info(g.s, "generator") }

// GenerateBatch implements model.Generator through models.GenerateSamples
// (the generator path the pipeline uses): one request per asked item,
// seeded by the image hash and item index, so an input draws the same
// items whatever else is in the batch. The question, options and reasoning
// are sampled; the answer letter after "<answer>" is the generator's most
// likely one (when "<answer>" is one token), so it follows the reasoning
// as well as the model can. A repeated option is dropped
// (data.Item.DedupeOptions). Completions that do not parse as a sample
// (models.ParseSample) or are left with fewer than two options are
// dropped, so an input may receive fewer items than it asked for (none
// from an untrained model). The metadata keys "modality" and "dataset" go
// into the instruction.
func (g *Generator) GenerateBatch(ctx context.Context, in []model.GenerateInput) ([][]model.Item, error) {
	v, done := g.s.use()
	defer done()
	imgs := make([]model.Image, len(in))
	for i, x := range in {
		imgs[i] = x.Image
	}
	px, err := g.m.pixels(ctx, v, imgs)
	if err != nil {
		return nil, mapErr("generator", err)
	}
	var reqs []models.GeneratorRequest
	var owner []int
	for i, x := range in {
		seed := fnv.New64a()
		seed.Write([]byte(x.ImageHash))
		for k := range max(x.NumItems, 1) {
			reqs = append(reqs, models.GeneratorRequest{Pixels: px[i], Modality: x.Metadata["modality"],
				Dataset: x.Metadata["dataset"], Seed: seed.Sum64() + uint64(k)})
			owner = append(owner, i)
		}
	}
	o := models.ReasonOptions{MaxNewTokens: g.maxTokens, Temperature: g.temperature, TopP: 0.95}
	if _, err := v.AnswerToken(); err == nil {
		greedy := float32(0)
		o.AnswerTemperature = &greedy
	}
	samples, err := v.GenerateSamples(ctx, reqs, o)
	if err != nil {
		return nil, mapErr("generator", err)
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
