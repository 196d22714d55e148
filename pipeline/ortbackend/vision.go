package ortbackend

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/pipeline"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/train"
)

// visionPrefix starts the name of every vision-encoder weight.
const visionPrefix = "visual."

// WithVision writes to out a copy of the bundle at base whose vision
// encoder weights are those of the bundle at vision; both must share the
// encoder's architecture.
func (b *Backend) WithVision(ctx context.Context, base, vision, out string) error {
	src, err := models.Load(ctx, base)
	if err != nil {
		return fmt.Errorf("ortbackend: %w", err)
	}
	v, err := models.Load(ctx, vision)
	if err != nil {
		return fmt.Errorf("ortbackend: %w", err)
	}
	if a, c := src.Manifest.Architecture.Vision, v.Manifest.Architecture.Vision; a != c {
		return fmt.Errorf("%w: vision encoders differ: %s has %+v, %s has %+v", ErrBackend, base, a, vision, c)
	}
	weights, _, err := graph.ReadWeights(src.WeightsPath())
	if err != nil {
		return fmt.Errorf("ortbackend: %s: %w", base, err)
	}
	from, _, err := graph.ReadWeights(v.WeightsPath())
	if err != nil {
		return fmt.Errorf("ortbackend: %s: %w", vision, err)
	}
	n := 0
	for name, t := range from {
		if strings.HasPrefix(name, visionPrefix) {
			weights[name] = t
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%w: %s holds no vision weights", ErrBackend, vision)
	}
	if _, err := models.Rewrite(ctx, src, out, weights); err != nil {
		return fmt.Errorf("ortbackend: %w", err)
	}
	return nil
}

// PretrainVision trains the vision encoder of the bundle at base with
// contrastive pretraining (train.PretrainVision, SimCLR) on the image
// files and writes the bundle to out.
func (b *Backend) PretrainVision(ctx context.Context, base, out string, images []string, o pipeline.VisionOptions) (pipeline.TrainStats, error) {
	src, err := models.Load(ctx, base)
	if err != nil {
		return pipeline.TrainStats{}, fmt.Errorf("ortbackend: %w", err)
	}
	res, err := train.PretrainVision(ctx, b.env, src, images, out, train.SSLConfig{Steps: o.Steps, Pairs: o.Pairs,
		ImageSize: o.ImageSize, LR: o.LearningRate, Temperature: o.Temperature, Seed: o.Seed,
		Session: runtime.SessionOptions{Device: b.opts.Device, IntraOpThreads: b.opts.Threads}})
	if err != nil {
		return pipeline.TrainStats{}, fmt.Errorf("ortbackend: %w", err)
	}
	stats := pipeline.TrainStats{Steps: len(res.Steps), Series: map[string][]float64{"ssl_accuracy": nil}}
	for _, s := range res.Steps {
		stats.Curve = append(stats.Curve, s.Loss)
		stats.Series["ssl_accuracy"] = append(stats.Series["ssl_accuracy"], s.Accuracy)
	}
	stats.Metrics = map[string]float64{"loss": tail(stats.Curve), "ssl_accuracy": tail(stats.Series["ssl_accuracy"]),
		"images": float64(res.Images), "seconds": res.Wall.Seconds()}
	return stats, nil
}

// Probe runs train.ProbeCollections on the bundle's encoder for the
// collections that have a probe task (train.DefaultProbeTasks; a folder
// without one, such as a single-class collection, is skipped).
func (b *Backend) Probe(ctx context.Context, bundle string, collections []string, o pipeline.ProbeOptions) (_ []pipeline.ProbeResult, err error) {
	var tasks []train.ProbeTask
	for _, dir := range collections {
		for _, t := range train.DefaultProbeTasks(filepath.Dir(filepath.Clean(dir))) {
			if filepath.Clean(t.Dir) == filepath.Clean(dir) {
				tasks = append(tasks, t)
			}
		}
	}
	if len(tasks) == 0 {
		return nil, nil
	}
	v, err := b.open(ctx, bundle)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, v.Close()) }()
	rows, err := train.ProbeCollections(ctx, v, tasks, train.ProbeOptions{ImageSize: o.ImageSize, Limit: o.Limit, Seed: o.Seed})
	if err != nil {
		return nil, fmt.Errorf("ortbackend: %w", err)
	}
	out := make([]pipeline.ProbeResult, len(rows))
	for i, r := range rows {
		out[i] = pipeline.ProbeResult{Collection: r.Task, Task: r.Label, Classes: r.Classes, Train: r.Train,
			Val: r.Val, Majority: r.Majority, RawPixels: r.Pixels.Accuracy, Features: r.Encoder.Accuracy}
	}
	return out, nil
}
