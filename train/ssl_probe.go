package train

import (
	"context"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/eval"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
)

// ProbeTask is one labelled collection the linear probe scores features
// on: its train split fits the probe, its validation split scores it.
type ProbeTask struct {
	// Name labels the task's row (default: the collection's folder name).
	Name string
	// Dir is the collection folder (collection.json, labels.jsonl).
	Dir string
	// Attribute, for a collection with attribute labels, names the
	// numeric attribute to bin; the class is min(value, Bins−1). Empty
	// for class-labelled collections (the class id's position in
	// ClassKeys is the class).
	Attribute string
	// Bins is the number of bins of Attribute (the last one open-ended).
	Bins int
	// Label says in words what the probe predicts (default: Name).
	Label string
}

// DefaultProbeTasks returns the probe tasks in the collections
// under root: pneumonia (pneumoniamnist), BUSI class, OCT CNV vs normal,
// CT region (mednist-ct), DR grade (retinamnist) and the BCCD white-cell
// count in bins 0, 1, 2+. mednist-mr has a single class and no task.
func DefaultProbeTasks(root string) []ProbeTask {
	t := func(name, label string) ProbeTask {
		return ProbeTask{Name: name, Dir: filepath.Join(root, name), Label: label}
	}
	bccd := t("bccd", "white cells 0/1/2+")
	bccd.Attribute, bccd.Bins = "wbc_count", 3
	return []ProbeTask{t("pneumoniamnist", "pneumonia"), t("busi", "BUSI class"), t("kermany-oct", "OCT CNV vs normal"),
		t("mednist-ct", "CT region"), t("retinamnist", "DR grade"), bccd}
}

// ProbeOptions sets ProbeCollections.
type ProbeOptions struct {
	// ImageSize is the square edge each image is squeezed to before the
	// image processor, as the pipeline's benchmark images are; default 56.
	ImageSize int
	// RawSize is the edge of the raw-pixel baseline's features (gray:
	// RawSize², colour: 3·RawSize²); default 16.
	RawSize int
	// Limit caps the images of each split per task (a seeded sample);
	// default 400, negative for all.
	Limit int
	// Seed draws the capped sample; default 1.
	Seed uint64
	// Probe configures the logistic regression.
	Probe eval.ProbeConfig
}

func (o ProbeOptions) withDefaults() ProbeOptions {
	if o.ImageSize == 0 {
		o.ImageSize = 56
	}
	if o.RawSize == 0 {
		o.RawSize = 16
	}
	if o.Limit == 0 {
		o.Limit = 400
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return o
}

// ProbeRow is one task's probe result: validation accuracy of the
// majority class, of logistic regression on raw pixels and on the frozen
// encoder's features.
type ProbeRow struct {
	Task     string
	Label    string // what the probe predicts (ProbeTask.Label)
	Modality string
	Classes  int
	Train    int // images the probes were fitted on
	Val      int // images they were scored on
	Majority float64
	Pixels   eval.ProbeResult
	Encoder  eval.ProbeResult
}

// ProbeCollections scores vlm's frozen vision features on each task: every
// sampled image is squeezed to ImageSize, run through the vision encoder
// (models.VLM.ImageFeatures) and mean-pooled over its image tokens; the
// raw-pixel baseline reads the same image at RawSize. Labels are read
// only here, never by pretraining.
func ProbeCollections(ctx context.Context, vlm *models.VLM, tasks []ProbeTask, opts ProbeOptions) ([]ProbeRow, error) {
	opts = opts.withDefaults()
	var rows []ProbeRow
	for _, task := range tasks {
		row, err := probeTask(ctx, vlm, task, opts)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func probeTask(ctx context.Context, vlm *models.VLM, task ProbeTask, opts ProbeOptions) (ProbeRow, error) {
	c, err := data.LoadCollection(task.Dir)
	if err != nil {
		return ProbeRow{}, fmt.Errorf("train: probe: %w", err)
	}
	if task.Name == "" {
		task.Name = filepath.Base(task.Dir)
	}
	sets := map[string]*[2]eval.ProbeSet{} // split → (encoder, pixels)
	for _, split := range []string{data.SplitTrain, data.SplitValidation} {
		imgs, labels, err := probeSample(c, task, split, opts)
		if err != nil {
			return ProbeRow{}, err
		}
		s := &[2]eval.ProbeSet{}
		for _, img := range imgs {
			enc, px, err := probeImage(ctx, vlm, c.ImageFile(img), opts)
			if err != nil {
				return ProbeRow{}, fmt.Errorf("train: probe %s: %w", task.Name, err)
			}
			s[0].X, s[1].X = append(s[0].X, enc), append(s[1].X, px)
		}
		s[0].Y, s[1].Y = labels, labels
		sets[split] = s
	}
	tr, va := sets[data.SplitTrain], sets[data.SplitValidation]
	if task.Label == "" {
		task.Label = task.Name
	}
	row := ProbeRow{Task: task.Name, Label: task.Label, Modality: c.Modality, Train: len(tr[0].Y), Val: len(va[0].Y)}
	if row.Encoder, err = eval.LinearProbe(ctx, tr[0], va[0], opts.Probe); err != nil {
		return ProbeRow{}, fmt.Errorf("train: probe %s encoder: %w", task.Name, err)
	}
	if row.Pixels, err = eval.LinearProbe(ctx, tr[1], va[1], opts.Probe); err != nil {
		return ProbeRow{}, fmt.Errorf("train: probe %s pixels: %w", task.Name, err)
	}
	row.Majority, row.Classes = row.Encoder.Majority, row.Encoder.Classes
	return row, nil
}

// probeSample returns up to opts.Limit labelled images of split (a seeded
// shuffle, so class-sorted label files are sampled evenly) and their
// classes.
func probeSample(c *data.Collection, task ProbeTask, split string, opts ProbeOptions) ([]data.Image, []int, error) {
	var imgs []data.Image
	for _, img := range c.Images {
		if img.Split == split {
			imgs = append(imgs, img)
		}
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x9b0be))
	rng.Shuffle(len(imgs), func(i, j int) { imgs[i], imgs[j] = imgs[j], imgs[i] })
	if opts.Limit > 0 && len(imgs) > opts.Limit {
		imgs = imgs[:opts.Limit]
	}
	if len(imgs) == 0 {
		return nil, nil, fmt.Errorf("%w: probe %s: no %s images in %s", ErrConfig, task.Name, split, c.Dir)
	}
	keys := c.ClassKeys()
	labels := make([]int, len(imgs))
	for i, img := range imgs {
		switch {
		case task.Attribute == "" && c.Kind == data.ClassLabels:
			labels[i] = slices.Index(keys, img.Class)
		case task.Attribute != "" && task.Bins >= 2:
			v, ok := img.Attributes[task.Attribute].(float64)
			if !ok || v < 0 || math.IsNaN(v) {
				return nil, nil, fmt.Errorf("%w: probe %s: image %s has no numeric %q", ErrConfig, task.Name, img.Path, task.Attribute)
			}
			labels[i] = min(int(v), task.Bins-1)
		default:
			return nil, nil, fmt.Errorf("%w: probe %s: %s needs an attribute and ≥ 2 bins, or class labels", ErrConfig, task.Name, c.Dir)
		}
	}
	return imgs, labels, nil
}

// probeImage returns an image's mean-pooled encoder features and its raw
// pixels at opts.RawSize (0–1).
func probeImage(ctx context.Context, vlm *models.VLM, path string, opts ProbeOptions) (enc, px []float32, err error) {
	img, _, err := preprocessing.DecodeFile(path, preprocessing.Limits{})
	if err != nil {
		return nil, nil, err
	}
	src, err := preprocessing.NewSource(img, 2*opts.ImageSize)
	if err != nil {
		return nil, nil, err
	}
	if enc, err = EncoderFeatures(ctx, vlm, src.View(opts.ImageSize)); err != nil {
		return nil, nil, err
	}
	return enc, rawPixels(src.View(opts.RawSize)), nil
}

// EncoderFeatures runs img through vlm's vision encoder and returns the
// mean of its image tokens' features (length: the hidden size).
func EncoderFeatures(ctx context.Context, vlm *models.VLM, img image.Image) ([]float32, error) {
	px, err := vlm.ProcessImage(img)
	if err != nil {
		return nil, err
	}
	f, err := vlm.ImageFeatures(ctx, []models.Prompt{{Images: []*preprocessing.Pixels{px}}})
	if err != nil {
		return nil, err
	}
	h, row := f.Hidden(), f.Row(0)
	out := make([]float32, h)
	tokens := len(row) / h
	for t := range tokens {
		for j := range h {
			out[j] += row[t*h+j]
		}
	}
	for j := range out {
		out[j] /= float32(tokens)
	}
	return out, nil
}

// rawPixels flattens a gray or RGBA view to 0–1 floats (colour channels
// planar).
func rawPixels(img image.Image) []float32 {
	switch im := img.(type) {
	case *image.Gray:
		out := make([]float32, len(im.Pix))
		for i, v := range im.Pix {
			out[i] = float32(v) / 255
		}
		return out
	case *image.RGBA:
		n := len(im.Pix) / 4
		out := make([]float32, 3*n)
		for i := range n {
			for c := range 3 {
				out[c*n+i] = float32(im.Pix[4*i+c]) / 255
			}
		}
		return out
	}
	return nil
}

// SSLImages returns the train-split image files of the collections in
// dirs whose modality is not in holdout (as collection.json spells it,
// the way the benchmark builder matches it): the pool PretrainVision may
// see. Validation and test images and
// the held-out modalities stay unseen. Labels are not read.
func SSLImages(dirs []string, holdout []string) ([]string, error) {
	var out []string
	for _, dir := range dirs {
		c, err := data.LoadCollection(dir)
		if err != nil {
			return nil, fmt.Errorf("train: ssl images: %w", err)
		}
		if slices.Contains(holdout, c.Modality) {
			continue
		}
		for _, img := range c.Images {
			if img.Split == data.SplitTrain {
				out = append(out, c.ImageFile(img))
			}
		}
	}
	return out, nil
}
