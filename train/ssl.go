package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
)

// SSLObjective names a self-supervised objective of PretrainVision.
type SSLObjective string

// The pretraining objectives.
const (
	// SimCLR is the contrastive objective (BuildSSLGraph): two augmented
	// views per image, NT-Xent over the batch.
	SimCLR SSLObjective = "simclr"
	// MIM is masked image modelling (BuildMIMGraph): reconstruct the
	// pixels of masked merge windows of one augmented view per image.
	MIM SSLObjective = "mim"
)

// SSLConfig sets a self-supervised vision pretraining run
// (PretrainVision). Zero fields take the defaults named on each.
type SSLConfig struct {
	// Objective is SimCLR (the default) or MIM.
	Objective SSLObjective
	// MaskRatio is the share of each image's merge windows MIM masks
	// (rounded, at least one, never all); default 0.5.
	MaskRatio float64
	// Steps is the number of updates; default 200.
	Steps int
	// Pairs is the number of images per update (SimCLR: each gives two
	// views, so a step contrasts 2·Pairs views); default 16.
	Pairs int
	// ImageSize is the view edge in pixels, a multiple of the bundle's
	// patch size × merge size (28 for Qwen2-VL); default 56, the
	// pipeline's image size.
	ImageSize int
	// LR is the peak learning rate; default 1e-3, with a linear warm-up
	// over the first 10% of steps and cosine decay to 0.
	LR float64
	// Temperature divides the cosine similarities; default 0.2.
	Temperature float64
	// ProjDim is the width of the projection head; default 64.
	ProjDim int
	// Seed draws the projection head, the image order and every
	// augmentation: the same seed, images and settings give the same run.
	Seed uint64
	// Augment sets the views; its Size is replaced by ImageSize.
	Augment preprocessing.AugmentConfig
	// AdamW holds the optimizer constants; the zero value means
	// graph.DefaultAdamW().
	AdamW graph.AdamWConfig
	// Session configures the ONNX Runtime session of the train step.
	Session runtime.SessionOptions
	// Recorder, when set, receives one record per step: "step", "loss",
	// "ssl_accuracy", "grad_norm", "learning_rate".
	Recorder *Recorder
}

func (c SSLConfig) withDefaults() SSLConfig {
	if c.Objective == "" {
		c.Objective = SimCLR
	}
	if c.MaskRatio == 0 {
		c.MaskRatio = 0.5
	}
	if c.Steps == 0 {
		c.Steps = 200
	}
	if c.Pairs == 0 {
		c.Pairs = 16
	}
	if c.ImageSize == 0 {
		c.ImageSize = 56
	}
	if c.LR == 0 {
		c.LR = 1e-3
	}
	if c.Temperature == 0 {
		c.Temperature = 0.2
	}
	if c.ProjDim == 0 {
		c.ProjDim = 64
	}
	if c.AdamW == (graph.AdamWConfig{}) {
		c.AdamW = graph.DefaultAdamW()
	}
	c.Augment.Size = c.ImageSize
	return c
}

// SSLStep is what one pretraining update reports.
type SSLStep struct {
	Step     int     // 1-based update number
	Loss     float64 // NT-Xent loss before the update (log(2·Pairs−1) at chance)
	Accuracy float64 // share of views whose nearest other view is their pair
	GradNorm float64 // global gradient norm before clipping
	LR       float64 // learning rate of the update
}

// SSLResult is the outcome of PretrainVision.
type SSLResult struct {
	// Bundle is the written copy of the source bundle with the trained
	// vision encoder (the projection head is dropped).
	Bundle *models.Bundle
	// Vision holds the trained vision weights written into Bundle.
	Vision map[string]*graph.Tensor
	// Steps has one entry per update.
	Steps []SSLStep
	// Objective is the objective trained.
	Objective SSLObjective
	// Images is the number of images the views were drawn from.
	Images int
	// Wall is the time spent in the update loop (not loading images).
	Wall time.Duration
}

// PretrainVision trains the vision encoder of src without labels. Each
// update draws Pairs images from images (file paths, in a seeded shuffled
// order, epoch after epoch) and augmented views of them
// (preprocessing.Augment). With SimCLR (BuildSSLGraph) it pulls the two
// views of one image together against all others; with MIM
// (BuildMIMGraph) it reconstructs the masked windows of one view. Only the
// vision weights and a train-only head change; the result is written to
// dir as a complete copy of src (WriteBundle) without the head.
// Unreadable images are errors naming the file; a cancelled ctx stops
// between updates and writes nothing.
func PretrainVision(ctx context.Context, env *runtime.Env, src *models.Bundle, images []string, dir string, cfg SSLConfig) (*SSLResult, error) {
	cfg = cfg.withDefaults()
	if env == nil || src == nil {
		return nil, fmt.Errorf("%w: ssl needs an ONNX Runtime env and a bundle", ErrConfig)
	}
	arch := src.Manifest.Architecture
	patches, err := sslPatches(src.Manifest.ImageProcessor, cfg)
	if err != nil {
		return nil, err
	}
	if len(images) < cfg.Pairs {
		return nil, fmt.Errorf("%w: ssl needs at least %d images (one step's pairs), got %d", ErrConfig, cfg.Pairs, len(images))
	}
	srcs, err := loadSSLSources(ctx, images, 2*cfg.ImageSize)
	if err != nil {
		return nil, err
	}
	r, err := newSSLRun(ctx, env, src, cfg, SSLShape{Pairs: cfg.Pairs, Patches: patches})
	if err != nil {
		return nil, err
	}
	res, err := r.loop(ctx, srcs)
	if err != nil {
		return nil, errors.Join(err, r.close())
	}
	vision := map[string]*graph.Tensor{}
	ws := r.state.Weights()
	for _, name := range VisionParams(arch) {
		vision[name] = ws[name]
	}
	if err := r.close(); err != nil {
		return nil, err
	}
	b, err := WriteBundle(ctx, src, dir, vision)
	if err != nil {
		return nil, err
	}
	res.Bundle, res.Vision, res.Images, res.Objective = b, vision, len(images), cfg.Objective
	return res, nil
}

// sslPatches checks the view size against the bundle's image processor
// and returns the patches per view edge.
func sslPatches(ip models.ImageProcessor, cfg SSLConfig) (int, error) {
	switch {
	case cfg.Objective != SimCLR && cfg.Objective != MIM:
		return 0, fmt.Errorf("%w: ssl objective %q (want simclr or mim)", ErrConfig, cfg.Objective)
	case !(cfg.MaskRatio > 0 && cfg.MaskRatio < 1):
		return 0, fmt.Errorf("%w: mim mask ratio %g (want 0 < ratio < 1)", ErrConfig, cfg.MaskRatio)
	case cfg.Steps < 0 || cfg.Pairs < 2:
		return 0, fmt.Errorf("%w: ssl steps %d, pairs %d (want steps ≥ 0, pairs ≥ 2)", ErrConfig, cfg.Steps, cfg.Pairs)
	case !(cfg.LR > 0) || math.IsInf(cfg.LR, 0):
		return 0, fmt.Errorf("%w: ssl learning rate %g must be > 0", ErrConfig, cfg.LR)
	case ip.PatchSize <= 0 || ip.MergeSize <= 0:
		return 0, fmt.Errorf("%w: bundle image processor has patch size %d, merge size %d", ErrConfig, ip.PatchSize, ip.MergeSize)
	}
	f := ip.PatchSize * ip.MergeSize
	if cfg.ImageSize%f != 0 || cfg.ImageSize*cfg.ImageSize < ip.MinPixels || (ip.MaxPixels > 0 && cfg.ImageSize*cfg.ImageSize > ip.MaxPixels) {
		return 0, fmt.Errorf("%w: ssl image size %d (want a multiple of %d with %d–%d pixels)",
			ErrConfig, cfg.ImageSize, f, ip.MinPixels, ip.MaxPixels)
	}
	return cfg.ImageSize / ip.PatchSize, nil
}

// loadSSLSources decodes every image once, shrunk to maxEdge.
func loadSSLSources(ctx context.Context, paths []string, maxEdge int) ([]*preprocessing.Source, error) {
	out := make([]*preprocessing.Source, len(paths))
	for i, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("train: ssl: loading images: %w", err)
		}
		img, _, err := preprocessing.DecodeFile(p, preprocessing.Limits{})
		if err != nil {
			return nil, fmt.Errorf("train: ssl: %s: %w", p, err)
		}
		if out[i], err = preprocessing.NewSource(img, maxEdge); err != nil {
			return nil, fmt.Errorf("train: ssl: %s: %w", p, err)
		}
	}
	return out, nil
}

// sslHeadInit draws a train-only head: matrices normal(0, 1/√fan-in),
// biases 0.
func sslHeadInit(specs []graph.WeightSpec, seed uint64) map[string]*graph.Tensor {
	rng := rand.New(rand.NewPCG(seed, 0x551))
	out := map[string]*graph.Tensor{}
	for _, s := range specs {
		n := 1
		for _, d := range s.Dims {
			n *= int(d)
		}
		data := make([]float32, n)
		if len(s.Dims) == 2 {
			std := 1 / math.Sqrt(float64(s.Dims[0]))
			for i := range data {
				data[i] = float32(rng.NormFloat64() * std)
			}
		}
		out[s.Name] = &graph.Tensor{DType: graph.Float32, Dims: s.Dims, F32: data}
	}
	return out
}
