package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Files a run writes in RunConfig.OutDir.
const (
	FileMetrics     = "metrics.jsonl" // one Record per step
	FileCurves      = "curves.png"    // loss (and reward) curves
	DirCheckpoints  = "checkpoints"   // step-NNNNNNNN folders
	DirBundle       = "bundle"        // the trained model bundle
	defaultKeepLast = 3
)

// RunConfig holds the settings every objective's loop shares.
type RunConfig struct {
	// Steps is the number of updates of the whole run (a resumed run stops
	// at the same total).
	Steps int
	// Schedule is the learning-rate schedule; its Steps is set to Steps.
	Schedule Schedule
	// Buckets are the static batch shapes.
	Buckets Buckets
	// Seed drives the data order (and GRPO's sampling).
	Seed uint64
	// OutDir receives metrics.jsonl, curves.png and checkpoints/.
	OutDir string
	// CheckpointEvery saves a checkpoint every so many updates (0: only at
	// the end); KeepCheckpoints keeps the newest (0 means 3).
	CheckpointEvery, KeepCheckpoints int
	// Resume continues from the newest checkpoint in OutDir/checkpoints; a
	// missing one is an error wrapping ErrCheckpoint.
	Resume bool
	// Progress receives a progress bar; nil draws none.
	Progress io.Writer
}

func (rc *RunConfig) validate() error {
	if rc.Steps <= 0 {
		return fmt.Errorf("%w: steps %d must be > 0", ErrConfig, rc.Steps)
	}
	if rc.OutDir == "" {
		return fmt.Errorf("%w: no output folder", ErrConfig)
	}
	if rc.CheckpointEvery < 0 {
		return fmt.Errorf("%w: checkpoint_every %d must be ≥ 0", ErrConfig, rc.CheckpointEvery)
	}
	rc.Schedule.Steps = rc.Steps
	if rc.KeepCheckpoints == 0 {
		rc.KeepCheckpoints = defaultKeepLast
	}
	if err := rc.Schedule.validate(); err != nil {
		return err
	}
	return rc.Buckets.validate()
}

// session is the bookkeeping of one run: recorder, metrics file and
// checkpoints.
type session struct {
	rc      RunConfig
	eng     *Engine
	rec     *Recorder
	metrics *os.File
}

// openSession prepares OutDir and, when resuming, loads the newest
// checkpoint into the engine's state and returns its metadata.
func openSession(eng *Engine, rc RunConfig) (*session, *CheckpointMeta, error) {
	if err := os.MkdirAll(filepath.Join(rc.OutDir, DirCheckpoints), 0o755); err != nil {
		return nil, nil, fmt.Errorf("train: %w", err)
	}
	s := &session{rc: rc, eng: eng}
	var meta *CheckpointMeta
	var kept []Record
	if rc.Resume {
		cp, err := LatestCheckpoint(filepath.Join(rc.OutDir, DirCheckpoints))
		if err != nil {
			return nil, nil, err
		}
		m, err := LoadCheckpoint(cp, eng.State(), eng.cfg.Objective)
		if err != nil {
			return nil, nil, err
		}
		meta = &m
		kept = readRecords(filepath.Join(rc.OutDir, FileMetrics), m.Step)
	}
	f, err := os.Create(filepath.Join(rc.OutDir, FileMetrics))
	if err != nil {
		return nil, nil, fmt.Errorf("train: %w", err)
	}
	s.metrics = f
	s.rec = NewRecorder(f, rc.Progress, rc.Steps)
	for _, r := range kept {
		if err := s.rec.Add(r); err != nil {
			return nil, nil, errors.Join(err, f.Close())
		}
	}
	return s, meta, nil
}

// readRecords returns the records of an earlier run up to step (resume).
func readRecords(path string, upTo int) []Record {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []Record
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var r Record
		if json.Unmarshal(sc.Bytes(), &r) == nil && int(r["step"]) <= upTo {
			out = append(out, r)
		}
	}
	return out
}

// checkpoint saves the state with meta.
func (s *session) checkpoint(meta CheckpointMeta) error {
	meta.Objective = s.eng.cfg.Objective
	_, err := SaveCheckpoint(filepath.Join(s.rc.OutDir, DirCheckpoints), s.eng.State(), meta, s.rc.KeepCheckpoints)
	return err
}

// due reports whether a checkpoint is due after the current step.
func (s *session) due() bool {
	st := s.eng.State().Step
	return st >= s.rc.Steps || (s.rc.CheckpointEvery > 0 && st%s.rc.CheckpointEvery == 0)
}

// close writes the curves and closes the metrics file.
func (s *session) close(keys ...string) error {
	err := s.metrics.Close()
	if len(s.rec.History) == 0 {
		return err
	}
	f, cerr := os.Create(filepath.Join(s.rc.OutDir, FileCurves))
	if cerr != nil {
		return errors.Join(err, fmt.Errorf("train: %w", cerr))
	}
	return errors.Join(err, s.rec.WriteCurves(f, keys...), f.Close())
}

// Supervised runs SFT or reward-model training of eng over rows until
// rc.Steps updates are done: shuffled bucketed batches, the learning-rate
// schedule, metrics, checkpoints and curves. On cancellation it saves a
// checkpoint at the last completed update and returns ctx's error, so a
// later Resume continues bit for bit.
func Supervised(ctx context.Context, eng *Engine, tok Tokens, rows []Row, rc RunConfig) (_ *Recorder, err error) {
	if err := rc.validate(); err != nil {
		return nil, err
	}
	obj := eng.cfg.Objective
	if obj != SFT && obj != Reward {
		return nil, fmt.Errorf("%w: Supervised trains sft or reward, not %q", ErrConfig, obj)
	}
	loader, err := NewLoader(rows, rc.Buckets, rc.Seed)
	if err != nil {
		return nil, err
	}
	s, meta, err := openSession(eng, rc)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, s.close("loss", OutAccuracy)) }()
	if meta != nil {
		if err := loader.Restore(meta.Loader); err != nil {
			return nil, err
		}
	}
	for eng.State().Step < rc.Steps {
		if ctx.Err() != nil {
			return s.rec, errors.Join(ctx.Err(), s.checkpoint(CheckpointMeta{Loader: loader.State()}))
		}
		if err := supervisedStep(ctx, eng, tok, loader, s); err != nil {
			return s.rec, err
		}
		if s.due() {
			if err := s.checkpoint(CheckpointMeta{Loader: loader.State()}); err != nil {
				return s.rec, err
			}
		}
	}
	return s.rec, nil
}

func supervisedStep(ctx context.Context, eng *Engine, tok Tokens, loader *Loader, s *session) (err error) {
	rows, b := loader.Next()
	batch, err := MakeBatch(eng.cfg.Objective, tok, rows, b, false)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, batch.Close()) }()
	step := eng.State().Step + 1
	lr := s.rc.Schedule.At(step)
	res, err := eng.Step(ctx, b, batch.Tensors, lr)
	if err != nil {
		return err
	}
	r := Record{"step": float64(step), "loss": res.Loss, "grad_norm": res.GradNorm, "learning_rate": lr,
		"epoch": float64(loader.Epoch()) + float64(loader.cursor)/float64(max(loader.BatchesPerEpoch(), 1))}
	for k, v := range res.Metrics {
		r[k] = v
	}
	return s.rec.Add(r)
}

// EvalReward scores rows with the reward model being trained (forward
// only) and returns the Spearman correlation of scores and targets.
func EvalReward(ctx context.Context, eng *Engine, tok Tokens, rows []Row, bs Buckets) (float64, error) {
	var scores, targets []float64
	for i := 0; i < len(rows); i += bs.Batch {
		chunk := rows[i:min(i+bs.Batch, len(rows))]
		n := 0
		for _, r := range chunk {
			n = max(n, len(r.IDs))
		}
		b, err := bs.For(n)
		if err != nil {
			return 0, err
		}
		if b.Grid, err = ImageGrid(chunk); err != nil {
			return 0, err
		}
		batch, err := MakeBatch(Reward, tok, chunk, b, false)
		if err != nil {
			return 0, err
		}
		res, err := eng.Forward(ctx, b, batch.Tensors)
		err = errors.Join(err, batch.Close())
		if err != nil {
			return 0, err
		}
		for j, r := range chunk {
			scores = append(scores, float64(res.Vectors[OutScores][j]))
			targets = append(targets, float64(r.Target))
		}
	}
	return Spearman(scores, targets), nil
}
