package ortbackend

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/pipeline"
	"github.com/medgr2/medgr2/train"
)

// rolloutPrompts is the number of prompts rolled out with one policy
// snapshot before it is refreshed (each snapshot writes the weights and
// reopens the policy).
const rolloutPrompts = 64

// GRPO improves the VQA bundle at base with group-relative policy
// optimisation on the fast path: for each prompt the policy samples Group
// option letters (the token after "<answer>", at o.Temperature, among the
// option letters); each completion is rewarded with
// RewardWeight·(RM score + 6)/16 (the reward bundle's score of the
// completion with the templated reasoning of the chosen option, mapped
// from [−6, 10] to [0, 1]) + MatchWeight·(letter == item's answer) +
// FormatWeight (the fast path is always well formed); advantages are
// normalised within the group; the loss is train.GRPO's clipped ratio
// (ε 0.2/0.28) with an optional k3 KL to the base policy. Rollouts of
// rolloutPrompts prompts share a policy snapshot, so the ratio departs
// from 1 on later steps of a snapshot.
func (b *Backend) GRPO(ctx context.Context, base, out, reward string, items []data.Item, o pipeline.GRPOOptions) (_ pipeline.TrainStats, err error) {
	if len(items) == 0 || o.Group < 2 {
		return pipeline.TrainStats{}, fmt.Errorf("%w: GRPO needs items and a group of at least 2", pipeline.ErrData)
	}
	if o.KLBeta != 0 {
		return pipeline.TrainStats{}, fmt.Errorf("%w: kl_beta %g: the fast-path GRPO runs without a reference model (use 0)",
			pipeline.ErrConfig, o.KLBeta)
	}
	rm, err := b.open(ctx, reward)
	if err != nil {
		return pipeline.TrainStats{}, err
	}
	defer func() { err = errors.Join(err, rm.Close()) }()
	temp := o.Temperature
	if temp <= 0 {
		temp = 1
	}
	t, err := b.newTrainer(ctx, base, train.GRPO, train.LossConfig{Temperature: temp, EpsLow: 0.2, EpsHigh: 0.28, Beta: o.KLBeta}, o.TrainOptions)
	if err != nil {
		return pipeline.TrainStats{}, err
	}
	defer func() { err = errors.Join(err, t.Close()) }()
	t.batch = max(o.BatchSize, o.Group)
	snap := out + ".snapshot"
	defer os.RemoveAll(snap)
	g := &grpoRun{b: b, t: t, rm: rm, o: o, temp: temp, rng: rand.New(rand.NewPCG(o.Seed, 0x6790))}
	g.stats.Series = map[string][]float64{"reward": nil, "reward_std": nil, "accuracy": nil}
	order := make([]int, len(items))
	for epoch := range o.Epochs {
		copy(order, g.rng.Perm(len(items)))
		for lo := 0; lo < len(order) && !g.done(); lo += rolloutPrompts {
			chunk := make([]data.Item, 0, rolloutPrompts)
			for _, i := range order[lo:min(lo+rolloutPrompts, len(order))] {
				chunk = append(chunk, items[i])
			}
			if err := g.iteration(ctx, chunk, snap); err != nil {
				return g.stats, fmt.Errorf("epoch %d: %w", epoch+1, err)
			}
		}
	}
	fmt.Fprintln(b.opts.Progress)
	g.stats.Metrics = map[string]float64{"loss": tail(g.stats.Curve), "reward": tail(g.stats.Series["reward"]),
		"accuracy": tail(g.stats.Series["accuracy"])}
	return g.stats, t.save(ctx, out)
}

// grpoRun is one GRPO call's state.
type grpoRun struct {
	b     *Backend
	t     *trainer
	rm    *models.VLM
	o     pipeline.GRPOOptions
	temp  float64
	rng   *rand.Rand
	stats pipeline.TrainStats
}

// done reports whether the run has taken its o.MaxSteps update steps.
func (g *grpoRun) done() bool { return g.o.MaxSteps > 0 && g.stats.Steps >= g.o.MaxSteps }

// iteration snapshots the policy, rolls out a chunk of prompts, and runs
// the updates on them.
func (g *grpoRun) iteration(ctx context.Context, chunk []data.Item, snap string) (err error) {
	if err := os.RemoveAll(snap); err != nil {
		return fmt.Errorf("ortbackend: %w", err)
	}
	if err := g.t.save(ctx, snap); err != nil {
		return err
	}
	pol, err := g.b.open(ctx, snap)
	if err != nil {
		return err
	}
	rows, err := g.rollout(ctx, pol, chunk)
	if err = errors.Join(err, pol.Close()); err != nil {
		return err
	}
	// Groups stay together: a step takes whole groups.
	per := max(1, g.t.batch/g.o.Group) * g.o.Group
	for lo := 0; lo < len(rows) && !g.done(); lo += per {
		res, err := g.t.step(ctx, train.GRPO, rows[lo:min(lo+per, len(rows))], g.o.LearningRate)
		if err != nil {
			return err
		}
		g.stats.Steps++
		g.stats.Curve = append(g.stats.Curve, res.Loss)
		fmt.Fprintf(g.b.opts.Progress, "\rgrpo step %d loss %.4f reward %.3f", g.stats.Steps, res.Loss,
			tail(g.stats.Series["reward"]))
	}
	return nil
}

// rollout samples Group letters per prompt with the snapshot policy and
// returns the rows with old log-probs and group advantages.
func (g *grpoRun) rollout(ctx context.Context, pol *models.VLM, items []data.Item) ([]train.Row, error) {
	ex := make([]pipeline.Example, len(items))
	for i, it := range items {
		ex[i] = pipeline.Example{Item: it}
	}
	rows, err := buildRows(ctx, pol, pipeline.RoleVQA, ex, nil, g.o.TrainVision)
	if err != nil {
		return nil, err
	}
	prompts := make([]models.Prompt, len(rows))
	for i, r := range rows {
		prompts[i] = models.Prompt{IDs: r.IDs[:r.AnswerStart]}
		if px, err := pixels(pol, items[i].ImageFile()); err != nil {
			return nil, err
		} else if px != nil {
			prompts[i].Images = append(prompts[i].Images, px)
		}
	}
	logits, err := pol.LastLogits(ctx, prompts)
	if err != nil {
		return nil, fmt.Errorf("%w: policy logits: %w", ErrBackend, err)
	}
	var out []train.Row
	var scored []pipeline.Example
	var picks []rolloutPick
	for i, it := range items {
		letters, err := pol.LetterTokens(len(it.Options()))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBackend, err)
		}
		lp := logSoftmax(logits.Row(i), g.temp)
		gold, _ := it.AnswerIndex()
		for range g.o.Group {
			k := sampleLetter(lp, letters, g.rng)
			choice := it
			choice.GTAnswer = it.Options()[k]
			scored = append(scored, pipeline.Example{Item: choice, Reasoning: pipeline.Reasoning(choice)})
			picks = append(picks, rolloutPick{row: i, letter: letters[k], logp: lp[letters[k]], match: k == gold})
		}
	}
	scores, err := scoreWith(ctx, g.rm, scored)
	if err != nil {
		return nil, err
	}
	rewards := g.rewards(picks, scores)
	for j, p := range picks {
		r := rows[p.row]
		ids := append(append([]int(nil), r.IDs[:r.AnswerStart]...), p.letter)
		out = append(out, train.Row{IDs: ids, AnswerStart: r.AnswerStart, AnswerEnd: r.AnswerStart + 1,
			Features: r.Features, Pixels: r.Pixels, Grids: r.Grids, OldLogp: []float32{float32(p.logp)}, Advantage: float32(rewards[j])})
	}
	return out, nil
}

// rolloutPick is one sampled completion.
type rolloutPick struct {
	row    int     // prompt index
	letter int     // sampled letter token
	logp   float64 // its log-prob under the snapshot (full vocabulary, at the temperature)
	match  bool    // letter is the item's answer
}

// rewards computes the hybrid rewards and turns them into group-normalised
// advantages, logging reward statistics.
func (g *grpoRun) rewards(picks []rolloutPick, scores []float64) []float64 {
	G := g.o.Group
	adv := make([]float64, len(picks))
	var sum, stdSum, acc float64
	for lo := 0; lo < len(picks); lo += G {
		r := make([]float64, G)
		for j := range G {
			p := picks[lo+j]
			rmNorm := math.Min(1, math.Max(0, (scores[lo+j]+6)/16))
			m := 0.0
			if p.match {
				m, acc = 1, acc+1
			}
			r[j] = g.o.RewardWeight*rmNorm + g.o.MatchWeight*m + g.o.FormatWeight
		}
		mean, sd := meanStd(r)
		sum += mean
		stdSum += sd
		for j := range G {
			adv[lo+j] = (r[j] - mean) / (sd + 1e-4)
		}
	}
	n := float64(len(picks) / G)
	g.stats.Series["reward"] = append(g.stats.Series["reward"], sum/n)
	g.stats.Series["reward_std"] = append(g.stats.Series["reward_std"], stdSum/n)
	g.stats.Series["accuracy"] = append(g.stats.Series["accuracy"], acc/float64(len(picks)))
	return adv
}

func meanStd(v []float64) (float64, float64) {
	var s float64
	for _, x := range v {
		s += x
	}
	mean := s / float64(len(v))
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)))
}

// logSoftmax returns log softmax(logits/temp) in float64.
func logSoftmax(logits []float32, temp float64) []float64 {
	out := make([]float64, len(logits))
	m := math.Inf(-1)
	for i, x := range logits {
		out[i] = float64(x) / temp
		m = math.Max(m, out[i])
	}
	var z float64
	for _, x := range out {
		z += math.Exp(x - m)
	}
	lz := m + math.Log(z)
	for i := range out {
		out[i] -= lz
	}
	return out
}

// sampleLetter draws an option index with probability proportional to
// its letter token's probability.
func sampleLetter(lp []float64, letters []int, rng *rand.Rand) int {
	w := make([]float64, len(letters))
	var total float64
	for k, id := range letters {
		w[k] = math.Exp(lp[id])
		total += w[k]
	}
	u := rng.Float64() * total
	for k := range w {
		if u < w[k] {
			return k
		}
		u -= w[k]
	}
	return len(w) - 1
}
