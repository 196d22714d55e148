package models

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"image"
	"time"

	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
)

// This file is the bottom layer of the runner: images in, vision features
// out. The prefill layer (prefill.go) splices the features into a batch;
// the roles (vqa.go, generator.go, reward.go) build prompts and read the
// outputs. Calls go that way only.

// Features are the vision encoder's output for a batch of prompts (see
// ImageFeatures): for each prompt, the merged features of its images in the
// order of their <|image_pad|> blocks. A text-only prompt has zero rows.
// The zero value holds no prompt; it matches only an empty batch.
type Features struct {
	rows   [][]float32 // per prompt: [image tokens, hidden], row-major
	hidden int         // feature width
}

// Len returns the number of prompts f holds features for.
func (f Features) Len() int { return len(f.rows) }

// Select returns the features of the prompts at idx, in that order, so a
// batch encoded once can be split (fast and reasoning rows of one request
// batch) or re-prompted (scoring after generation) without running the
// vision encoder again. It panics if an index is out of range, as slicing
// does.
func (f Features) Select(idx []int) Features {
	out := Features{rows: make([][]float32, len(idx)), hidden: f.hidden}
	for k, i := range idx {
		out.rows[k] = f.rows[i]
	}
	return out
}

// flat returns the features of every prompt concatenated, as the splice
// reads them, after checking f has one entry per prompt.
func (f Features) flat(prompts int) ([]float32, error) {
	if len(f.rows) != prompts {
		return nil, fmt.Errorf("%w: features for %d prompts, batch of %d (compute them with ImageFeatures)", ErrImageTokens, len(f.rows), prompts)
	}
	n := 0
	for _, r := range f.rows {
		n += len(r)
	}
	out := make([]float32, 0, n)
	for _, r := range f.rows {
		out = append(out, r...)
	}
	return out, nil
}

// ProcessImage turns a decoded image into the bundle's model input
// (smart resize, normalisation, patches); errors wrap ErrBadRequest.
func (v *VLM) ProcessImage(img image.Image) (*preprocessing.Pixels, error) {
	if img == nil {
		return nil, fmt.Errorf("%w: nil image", ErrBadRequest)
	}
	p, err := v.image.Process(img)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return p, nil
}

// ImageFeatures runs the vision encoder over every image of prompts, one
// image per call. The encoder attends within each image only, so the
// result equals one concatenated call, but its cost grows linearly with
// the number of images instead of quadratically (the concatenated call
// builds an N×N attention over all N patches of the batch).
func (v *VLM) ImageFeatures(ctx context.Context, prompts []Prompt) (Features, error) {
	if err := v.checkOpen(); err != nil {
		return Features{}, err
	}
	out := Features{rows: make([][]float32, len(prompts)), hidden: v.cfg.HiddenSize}
	for r, p := range prompts {
		for k, img := range p.Images {
			if err := v.checkPixels(img); err != nil {
				return Features{}, fmt.Errorf("row %d image %d: %w", r, k, err)
			}
			f, err := v.encodeImages(ctx, []*preprocessing.Pixels{img})
			if err != nil {
				return Features{}, err
			}
			out.rows[r] = append(out.rows[r], f...)
		}
	}
	return out, nil
}

// checkPixels verifies a processed image fits the vision encoder.
func (v *VLM) checkPixels(p *preprocessing.Pixels) error {
	vc := v.cfg.Vision
	switch {
	case p == nil:
		return fmt.Errorf("%w: nil image", ErrBadRequest)
	case p.PatchDim != vc.PatchDim() || p.MergeSize != vc.SpatialMergeSize:
		return fmt.Errorf("%w: patches of %d values, merge %d; the vision encoder wants %d, merge %d",
			ErrBadRequest, p.PatchDim, p.MergeSize, vc.PatchDim(), vc.SpatialMergeSize)
	case p.NumPatches <= 0 || len(p.Values) != p.NumPatches*p.PatchDim ||
		int64(p.NumPatches) != p.GridTHW[0]*p.GridTHW[1]*p.GridTHW[2]:
		return fmt.Errorf("%w: %d patches, %d values, grid %v disagree", ErrBadRequest, p.NumPatches, len(p.Values), p.GridTHW)
	}
	return nil
}

// encodeImages runs the images through the vision encoder in one call
// (concatenated along the patch axis, as Qwen2-VL does; the encoder attends
// within each image only) and returns the merged features image after
// image: [tokens, hidden]. The call's cost grows with the square of the
// total patch count, so ImageFeatures calls it once per image.
func (v *VLM) encodeImages(ctx context.Context, imgs []*preprocessing.Pixels) (_ []float32, err error) {
	defer traceVision(ctx, time.Now())
	var grid []int64
	patches, values := 0, 0
	for _, img := range imgs {
		grid = append(grid, img.GridTHW[:]...)
		patches += img.NumPatches
		values += len(img.Values)
	}
	if patches == 0 {
		return nil, nil
	}
	half := v.bundle.Names.Half
	var pxBuf floatBuf
	if len(imgs) == 1 && !half.PixelValues {
		// One float32 image (how ImageFeatures calls): its values feed
		// the encoder as they are, without a copy of a few megabytes.
		pxBuf = floatBuf{f32: imgs[0].Values}
	} else {
		pxBuf = newFloatBuf(half.PixelValues, values, 0)
		off := 0
		for _, img := range imgs {
			pxBuf.set(off, img.Values)
			off += len(img.Values)
		}
	}
	pxT, err := pxBuf.tensor([]int64{int64(patches), int64(v.cfg.Vision.PatchDim())})
	if err != nil {
		return nil, fmt.Errorf("models: pixel_values: %w", err)
	}
	gridT, err := runtime.NewTensor([]int64{int64(len(grid) / 3), 3}, grid)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("models: grid_thw: %w", err), pxT.Close())
	}
	defer func() { err = errors.Join(err, runtime.CloseAll(pxT, gridT)) }()
	tokens := patches / v.cfg.Vision.MergeUnit()
	featBuf := newFloatBuf(half.ImageFeatures, tokens*v.cfg.HiddenSize, 0)
	out, err := featBuf.tensor([]int64{int64(tokens), int64(v.cfg.HiddenSize)})
	if err != nil {
		return nil, fmt.Errorf("models: image_features: %w", err)
	}
	defer func() { err = errors.Join(err, out.Close()) }()
	gridName := cmp.Or(v.bundle.Names.GridTHW, GridTHW)
	err = v.vision.RunInto(ctx, []runtime.NamedTensor{{Name: PixelValues, Tensor: pxT}, {Name: gridName, Tensor: gridT}},
		[]runtime.NamedTensor{{Name: ImageFeatures, Tensor: out}})
	if err != nil {
		return nil, fmt.Errorf("models: vision encoder: %w", err)
	}
	if !half.ImageFeatures {
		return featBuf.f32, nil
	}
	feats := make([]float32, featBuf.len()) // widened; spliceImages rounds them back exactly
	featBuf.read(feats, 0)
	return feats, nil
}
