package pipeline

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/medgr2/medgr2/train"
)

// VisionPretrainConfig sets the pretrain stage's self-supervised step:
// contrastive (SimCLR) training of the vision encoder on the training
// images of the kept modalities, labels never read. The held-out
// modality's images and every test image stay unseen. The trained
// encoder is the starting encoder of every role.
type VisionPretrainConfig struct {
	// Steps is the number of updates; 0 disables the step.
	Steps int `json:"steps"`
	// Pairs is the images per update (two views each); 0 means the
	// trainer's default.
	Pairs int `json:"pairs"`
	// LearningRate is the peak learning rate; 0 means the trainer's
	// default.
	LearningRate float64 `json:"learning_rate"`
	// Temperature divides the similarities of the contrastive loss; 0
	// means the trainer's default.
	Temperature float64 `json:"temperature"`
}

// ProbeConfig sets the linear-probe diagnostic: logistic regression on
// frozen encoder features of each labelled collection, fitted on its
// train split and scored on its val split.
type ProbeConfig struct {
	// Limit caps the images per split and collection; 0 disables the
	// probe.
	Limit int `json:"limit"`
}

// VisionOptions are the settings of one vision pretraining call.
type VisionOptions struct {
	VisionPretrainConfig
	ImageSize int    // side of the training views, pixels (the benchmark's image size)
	Seed      uint64 // augmentation, order and projection-head seed
}

// ProbeResult is one collection's linear probe: validation accuracy of
// logistic regression on the encoder's features, against raw pixels and
// the majority class.
type ProbeResult struct {
	Collection string  `json:"collection"`
	Task       string  `json:"task"`    // what the label is (e.g. "pneumonia", "DR grade")
	Classes    int     `json:"classes"` // distinct labels
	Train      int     `json:"train"`   // images fitted
	Val        int     `json:"val"`     // images scored
	Majority   float64 `json:"majority"`
	RawPixels  float64 `json:"raw_pixels"`
	Features   float64 `json:"features"`
}

// VisionTrainer pretrains and probes vision encoders.
type VisionTrainer interface {
	// PretrainVision trains the vision encoder of the bundle at base on
	// the image files (no labels) and writes the bundle to out.
	PretrainVision(ctx context.Context, base, out string, images []string, opts VisionOptions) (TrainStats, error)
	// WithVision writes to out a copy of the bundle at base whose vision
	// encoder weights are those of the bundle at vision.
	WithVision(ctx context.Context, base, vision, out string) error
	// Probe runs the linear probe of the bundle's encoder on each
	// labelled collection folder that has a probe task.
	Probe(ctx context.Context, bundle string, collections []string, opts ProbeOptions) ([]ProbeResult, error)
}

// ProbeOptions are the settings of one probe call.
type ProbeOptions struct {
	Limit     int    // images per split and collection (a seeded sample)
	ImageSize int    // side the images are squeezed to, as the benchmark's are
	Seed      uint64 // sample seed
}

// Names of the probe measurements in PretrainSummary.Probe and the
// report.
const (
	ProbeRandom    = "random encoder"
	ProbePretrain  = "after vision pretraining"
	ProbeBase      = "pretrained base"
	ProbePolicyRow = "policy after GRPO"
)

// visionEnabled reports whether the pretrain stage pretrains the vision
// encoder.
func (p *Pipeline) visionEnabled() bool {
	return p.pretrainEnabled() && p.cfg.Pretrain.Vision.Steps > 0
}

// probeEnabled reports whether the stages run the linear probe.
func (p *Pipeline) probeEnabled() bool { return p.cfg.Probe.Limit > 0 }

// probe runs the linear probe on bundle when the probe is on.
func (p *Pipeline) probe(ctx context.Context, bundle string) ([]ProbeResult, error) {
	if !p.probeEnabled() {
		return nil, nil
	}
	res, err := p.be.Probe(ctx, bundle, p.cfg.Data.Collections, ProbeOptions{Limit: p.cfg.Probe.Limit,
		ImageSize: p.cfg.Data.ImageSize, Seed: p.cfg.Data.BuildSeed})
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", bundle, err)
	}
	return res, nil
}

// trainImages returns the distinct image files of the training split of
// the kept modalities, in a fixed order: what vision pretraining sees.
func trainImages(b *benchmark) []string {
	seen := map[string]bool{}
	var out []string
	for _, it := range b.train {
		f := it.ImageFile()
		if f != "" && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

// pretrainVision runs the vision pretrain stage in dir: a fresh
// VQA bundle probed, its encoder pretrained on the training images, and
// probed again. It returns the pretrained bundle (the encoder every role
// starts from) and fills sum.
func (p *Pipeline) pretrainVision(ctx context.Context, dir string, seed uint64, sum *PretrainSummary) (string, error) {
	b, err := p.loadBenchmark()
	if err != nil {
		return "", err
	}
	images := trainImages(b)
	init, err := p.fresh(ctx, dir, RoleVQA, seed)
	if err != nil {
		return "", err
	}
	sum.Probe = map[string][]ProbeResult{}
	if r, err := p.probe(ctx, init); err != nil {
		return "", err
	} else if r != nil {
		sum.Probe[ProbeRandom] = r
	}
	out := filepath.Join(dir, dirVision)
	stats, err := p.be.PretrainVision(ctx, init, out, images, VisionOptions{VisionPretrainConfig: p.cfg.Pretrain.Vision,
		ImageSize: p.cfg.Data.ImageSize, Seed: seed})
	if err != nil {
		return "", fmt.Errorf("pretrain vision: %w", err)
	}
	sum.Vision, sum.VisionImages = &stats, len(images)
	if err := removeAll(init); err != nil {
		return "", err
	}
	if r, err := p.probe(ctx, out); err != nil {
		return "", err
	} else if r != nil {
		sum.Probe[ProbePretrain] = r
	}
	return out, nil
}

// dirVision is the vision pretrain stage's folder of the bundle whose encoder
// vision pretraining trained.
const dirVision = "vision"

// freshWithVision returns a fresh bundle of role, with the pretrained
// encoder of the pretrain stage when vision pretraining is on.
func (p *Pipeline) freshWithVision(ctx context.Context, dir string, role Role, seed uint64, vision string) (string, error) {
	d, err := p.fresh(ctx, dir, role, seed)
	if err != nil || vision == "" {
		return d, err
	}
	out := d + "-vision"
	if err := p.be.WithVision(ctx, d, vision, out); err != nil {
		return "", fmt.Errorf("%s bundle with the pretrained encoder: %w", role, err)
	}
	if err := removeAll(d); err != nil {
		return "", err
	}
	return out, nil
}

// pretrainedVision returns the pretrain stage's bundle whose encoder
// every fresh bundle starts from, or "" when vision pretraining is off.
func (p *Pipeline) pretrainedVision() string {
	if !p.visionEnabled() {
		return ""
	}
	return filepath.Join(p.stageDir(StagePretrainVision), dirVision)
}

// ProbeRow is one collection's row of the report's probe table.
type ProbeRow struct {
	Collection string  `json:"collection"`
	Task       string  `json:"task"`
	Classes    int     `json:"classes"`
	Train      int     `json:"train"`
	Val        int     `json:"val"`
	Majority   float64 `json:"majority"`
	RawPixels  float64 `json:"raw_pixels"`
	// Features holds the probe's accuracy on the encoder's features at
	// each measurement point (the Probe* names); the policy's is over
	// seeds.
	Features map[string]Cell `json:"features"`
}

// probeTable gathers probe results: collection → point → accuracies.
type probeTable map[string]*probeAcc

type probeAcc struct {
	first ProbeResult
	acc   map[string][]float64
}

func (t probeTable) add(point string, rs []ProbeResult) {
	for _, r := range rs {
		a, ok := t[r.Collection]
		if !ok {
			a = &probeAcc{first: r, acc: map[string][]float64{}}
			t[r.Collection] = a
		}
		a.acc[point] = append(a.acc[point], r.Features)
	}
}

// rows returns the table sorted by collection; nil when empty.
func (t probeTable) rows() []ProbeRow {
	var out []ProbeRow
	for _, name := range slices.Sorted(maps.Keys(t)) {
		a := t[name]
		r := ProbeRow{Collection: name, Task: a.first.Task, Classes: a.first.Classes, Train: a.first.Train,
			Val: a.first.Val, Majority: a.first.Majority, RawPixels: a.first.RawPixels, Features: map[string]Cell{}}
		for point, v := range a.acc {
			mean, sd := train.MeanStd(v)
			r.Features[point] = Cell{Mean: mean, Spread: sd, PerRun: v, N: a.first.Val}
		}
		out = append(out, r)
	}
	return out
}

// probePoints is the order of the probe table's feature columns.
var probePoints = []string{ProbeRandom, ProbePretrain, ProbeBase, ProbePolicyRow}

// probeMarkdown renders the probe table; "" without rows.
func probeMarkdown(rows []ProbeRow) string {
	if len(rows) == 0 {
		return ""
	}
	var points []string
	for _, pt := range probePoints {
		for _, r := range rows {
			if _, ok := r.Features[pt]; ok {
				points = append(points, pt)
				break
			}
		}
	}
	var b strings.Builder
	b.WriteString("\n## Linear probe of the vision encoder (validation accuracy %)\n\n" +
		"Logistic regression on frozen features (the mean of the encoder's image tokens), fitted on each collection's train split and scored on its val split; raw pixels and the majority class for reference.\n\n")
	b.WriteString("| collection | label | classes | train / val | majority | raw pixels | " + strings.Join(points, " | ") + " |\n")
	b.WriteString("|---|---|---|---|---|---|" + strings.Repeat("---|", len(points)) + "\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %d | %d / %d | %.1f | %.1f |", r.Collection, r.Task, r.Classes, r.Train, r.Val,
			100*r.Majority, 100*r.RawPixels)
		for _, pt := range points {
			if c, ok := r.Features[pt]; ok {
				if len(c.PerRun) > 1 {
					fmt.Fprintf(&b, " %.1f ± %.1f |", 100*c.Mean, 100*c.Spread)
				} else {
					fmt.Fprintf(&b, " %.1f |", 100*c.Mean)
				}
			} else {
				b.WriteString(" – |")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
