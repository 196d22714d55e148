package ortbackend

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/pipeline"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/train"
)

// SFT fine-tunes the bundle at base on examples (cross-entropy on the
// role's target text) and writes the result to out. o.OptionShuffles adds
// option-order-shuffled copies of the examples (see pipeline.TrainOptions).
func (b *Backend) SFT(ctx context.Context, base, out string, role pipeline.Role, ex []pipeline.Example, o pipeline.TrainOptions) (pipeline.TrainStats, error) {
	ex, err := shuffledOptions(ex, o.OptionShuffles, o.Seed)
	if err != nil {
		return pipeline.TrainStats{}, err
	}
	return b.supervised(ctx, base, out, train.SFT, role, ex, nil, nil, o)
}

// TrainReward regresses the reward bundle at base on graded samples (MSE
// against their levels, plus train.DefaultRewardRankWeight times the
// pairwise ranking term, with the samples of one Group batched together)
// and writes the result to out.
func (b *Backend) TrainReward(ctx context.Context, base, out string, g []pipeline.Graded, o pipeline.TrainOptions) (pipeline.TrainStats, error) {
	ex := make([]pipeline.Example, len(g))
	levels := make([]float64, len(g))
	groups := make([]string, len(g))
	for i, x := range g {
		ex[i], levels[i], groups[i] = x.Example, x.Level, x.Group
	}
	return b.supervised(ctx, base, out, train.Reward, pipeline.RoleReward, ex, levels, groups, o)
}

// supervised builds rows with the base bundle and trains them.
func (b *Backend) supervised(ctx context.Context, base, out string, obj train.Objective, role pipeline.Role,
	ex []pipeline.Example, levels []float64, groups []string, o pipeline.TrainOptions) (_ pipeline.TrainStats, err error) {
	if len(ex) == 0 {
		return pipeline.TrainStats{}, fmt.Errorf("%w: no training examples", pipeline.ErrData)
	}
	v, err := b.open(ctx, base)
	if err != nil {
		return pipeline.TrainStats{}, err
	}
	rows, err := buildRows(ctx, v, role, ex, levels, o.TrainVision)
	if err == nil && role == pipeline.RoleGenerator && o.AnswerWeight > 0 && o.AnswerWeight != 1 {
		err = weighAnswer(v, rows, float32(o.AnswerWeight))
	}
	if err = errors.Join(err, v.Close()); err != nil {
		return pipeline.TrainStats{}, err
	}
	var loss train.LossConfig
	if obj == train.Reward {
		loss.RankWeight = train.DefaultRewardRankWeight
		for i := range rows {
			rows[i].Group = groups[i]
		}
	}
	t, err := b.newTrainer(ctx, base, obj, loss, o)
	if err != nil {
		return pipeline.TrainStats{}, err
	}
	defer func() { err = errors.Join(err, t.Close()) }()
	t.batch = o.BatchSize
	rng := rand.New(rand.NewPCG(o.Seed, uint64(len(rows))))
	var stats pipeline.TrainStats
	var plan [][][]train.Row
	steps := 0
	for range o.Epochs {
		batches := bucketed(rows, o.BatchSize, rng)
		if o.MaxSteps > 0 {
			batches = batches[:min(len(batches), o.MaxSteps-steps)]
		}
		plan, steps = append(plan, batches), steps+len(batches)
		if steps == o.MaxSteps {
			break
		}
	}
	for epoch, batches := range plan {
		for _, batch := range batches {
			lr := schedule(o.LearningRate, stats.Steps, steps)
			res, err := t.step(ctx, obj, batch, lr)
			if err != nil {
				return stats, fmt.Errorf("epoch %d: %w", epoch+1, err)
			}
			stats.Steps++
			stats.Curve = append(stats.Curve, res.Loss)
			fmt.Fprintf(b.opts.Progress, "\r%s %s step %d/%d loss %.4f", obj, role, stats.Steps, steps, res.Loss)
		}
	}
	fmt.Fprintln(b.opts.Progress)
	stats.Metrics = map[string]float64{"loss": tail(stats.Curve), "examples": float64(len(rows))}
	return stats, t.save(ctx, out)
}

// schedule is the learning rate of update step (0-based) of total: a
// linear warm-up over the first 10% and a linear decay to 10% of lr.
func schedule(lr float64, step, total int) float64 {
	warm := max(1, total/10)
	if step < warm {
		return lr * float64(step+1) / float64(warm)
	}
	p := math.Min(1, float64(step-warm)/float64(max(1, total-warm)))
	return lr * (1 - 0.9*p)
}

// tail is the mean of the last (up to) 10 values.
func tail(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	v = v[max(0, len(v)-10):]
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// bucketLength rounds a row length up to a multiple of 32, so a run
// builds few train-step graphs (one per length).
func bucketLength(n int) int { return (n + 31) / 32 * 32 }

// bucketed shuffles rows and groups them into batches of rows sharing a
// bucket length. Rows of one non-empty Row.Group (the graded samples of
// an item) stay in one batch, in the bucket of the group's longest row.
func bucketed(rows []train.Row, size int, rng *rand.Rand) [][]train.Row {
	var units [][]train.Row
	at := map[string]int{}
	for _, r := range rows {
		if i, ok := at[r.Group]; ok && r.Group != "" {
			units[i] = append(units[i], r)
			continue
		}
		at[r.Group] = len(units)
		units = append(units, []train.Row{r})
	}
	rng.Shuffle(len(units), func(i, j int) { units[i], units[j] = units[j], units[i] })
	byLen := map[int][][]train.Row{}
	var lengths []int
	for _, u := range units {
		L := bucketLength(maxLen(u))
		if _, ok := byLen[L]; !ok {
			lengths = append(lengths, L)
		}
		byLen[L] = append(byLen[L], u)
	}
	slices.Sort(lengths)
	var out [][]train.Row
	for _, L := range lengths {
		var cur []train.Row
		for _, u := range byLen[L] {
			for len(u) > 0 { // a group larger than a batch is split
				if len(cur)+len(u) > size && len(cur) > 0 {
					out, cur = append(out, cur), nil
				}
				n := min(len(u), size)
				cur, u = append(cur, u[:n]...), u[n:]
			}
		}
		if len(cur) > 0 {
			out = append(out, cur)
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// trainer is a train.Trainer with the pipeline's batching state.
type trainer struct {
	*train.Trainer
	tok     train.Tokens
	batch   int // rows per step (the bucket's batch)
	skipped int // steps dropped for a non-finite loss
}

// newTrainer loads the bundle at dir into a train.Trainer that keeps the
// parameters freeze names fixed.
func (b *Backend) newTrainer(ctx context.Context, dir string, obj train.Objective, loss train.LossConfig, o pipeline.TrainOptions) (*trainer, error) {
	bundle, err := models.Load(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("ortbackend: %w", err)
	}
	t, err := train.NewTrainer(b.env, bundle, train.EngineConfig{Objective: obj, Loss: loss, Freeze: o.Freeze, TrainVision: o.TrainVision,
		Session: runtime.SessionOptions{Device: b.opts.Device, IntraOpThreads: b.opts.Threads}})
	if err != nil {
		return nil, fmt.Errorf("ortbackend: %w", err)
	}
	return &trainer{Trainer: t, tok: train.TokensOf(bundle.Manifest)}, nil
}

// Close releases the engine and state; it is nil-safe.
func (t *trainer) Close() error {
	if t == nil {
		return nil
	}
	return t.Trainer.Close()
}

// step runs one update on rows (a batch padded to the bucket). A
// non-finite loss skips the update (the state is unchanged) unless every
// one of the last steps failed.
func (t *trainer) step(ctx context.Context, obj train.Objective, rows []train.Row, lr float64) (train.StepResult, error) {
	bk := train.Bucket{Batch: len(rows), Length: bucketLength(maxLen(rows))}
	if t.batch > 0 {
		bk.Batch = t.batch
	}
	grid, err := train.ImageGrid(rows)
	if err != nil {
		return train.StepResult{}, fmt.Errorf("ortbackend: %w", err)
	}
	bk.Grid = grid
	batch, err := train.MakeBatch(obj, t.tok, rows, bk, false)
	if err != nil {
		return train.StepResult{}, fmt.Errorf("ortbackend: %w", err)
	}
	res, err := t.Engine.Step(ctx, bk, batch.Tensors, lr)
	err = errors.Join(err, batch.Close())
	if errors.Is(err, train.ErrNonFinite) && t.skipped < 8 {
		t.skipped++
		return train.StepResult{Loss: math.NaN()}, nil
	}
	if err != nil {
		return train.StepResult{}, fmt.Errorf("ortbackend: %w", err)
	}
	return res, nil
}

func maxLen(rows []train.Row) int {
	n := 0
	for _, r := range rows {
		n = max(n, len(r.IDs))
	}
	return n
}

// save writes the source bundle again at out with the trained weights
// (train.WriteBundle: graphs, .onnx_data and checkpoint agree).
func (t *trainer) save(ctx context.Context, out string) error {
	if _, err := t.WriteBundle(ctx, out); err != nil {
		return fmt.Errorf("ortbackend: %w", err)
	}
	return nil
}
