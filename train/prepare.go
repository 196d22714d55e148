package train

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/tokenizer"
)

// Image is an item's processed image and, while the vision encoder is
// frozen, its features.
type Image struct {
	Pixels   *preprocessing.Pixels // processed patches (kept for rollouts, and fed to a trainable encoder)
	Features []float32             // image_features [tokens, hidden], flattened; nil when the encoder trains
}

// Prep turns OmniMedVQA items into training rows for one bundle: it
// renders prompts with the bundle's tokenizer and processes each image
// once (cached by image file). With a frozen vision encoder (NewPrep) it
// also runs the bundle's encoder once per image and rows carry the cached
// features; with a trainable one (NewPrepFor a config that trains vision)
// rows carry the processed pixels, which the train graph encodes. Safe for
// concurrent use.
type Prep struct {
	vlm    *models.VLM
	system string
	pixels bool // rows carry pixels (the encoder trains), not features
	mu     sync.Mutex
	cache  map[string]*Image
}

// NewPrep returns a Prep over an opened bundle for a frozen vision
// encoder: rows carry cached features.
func NewPrep(v *models.VLM) *Prep {
	return &Prep{vlm: v, system: v.Manifest().Prompt.System, cache: map[string]*Image{}}
}

// NewPrepFor returns a Prep whose rows suit an engine of cfg: pixels when
// VisionTrained(cfg), cached features otherwise (as NewPrep).
func NewPrepFor(v *models.VLM, cfg EngineConfig) *Prep {
	p := NewPrep(v)
	cfg.Arch = v.Manifest().Architecture
	p.pixels = VisionTrained(cfg)
	return p
}

// Tokens returns the batching settings of the bundle.
func (p *Prep) Tokens() Tokens { return TokensOf(p.vlm.Manifest()) }

// Image decodes, processes and (with a frozen encoder) encodes the image
// at path (cached).
func (p *Prep) Image(ctx context.Context, path string) (*Image, error) {
	p.mu.Lock()
	im, ok := p.cache[path]
	p.mu.Unlock()
	if ok {
		return im, nil
	}
	img, _, err := preprocessing.DecodeFile(path, preprocessing.DefaultLimits())
	if err != nil {
		return nil, fmt.Errorf("%w: image %s: %w", ErrData, path, err)
	}
	px, err := p.vlm.ImageConfig().Process(img)
	if err != nil {
		return nil, fmt.Errorf("%w: image %s: %w", ErrData, path, err)
	}
	im = &Image{Pixels: px}
	if !p.pixels {
		if im.Features, err = p.encode(ctx, px); err != nil {
			return nil, fmt.Errorf("train: vision encoder on %s: %w", path, err)
		}
	}
	p.mu.Lock()
	p.cache[path] = im
	p.mu.Unlock()
	return im, nil
}

// encode runs the vision encoder on one processed image.
func (p *Prep) encode(ctx context.Context, px *preprocessing.Pixels) (_ []float32, err error) {
	vision, _, _ := p.vlm.Sessions()
	h := p.vlm.Manifest().Architecture.HiddenSize
	pxT, err := runtime.NewTensor([]int64{int64(px.NumPatches), int64(px.PatchDim)}, px.Values)
	if err != nil {
		return nil, err
	}
	grid := []int64{px.GridTHW[0], px.GridTHW[1], px.GridTHW[2]} // a fresh slice: cgo rejects pointers into Pixels
	gridT, err := runtime.NewTensor([]int64{1, 3}, grid)
	if err != nil {
		return nil, errors.Join(err, pxT.Close())
	}
	feats := make([]float32, px.ImageTokens()*h)
	out, err := runtime.NewTensor([]int64{int64(px.ImageTokens()), int64(h)}, feats)
	if err != nil {
		return nil, errors.Join(err, runtime.CloseAll(pxT, gridT))
	}
	defer func() { err = errors.Join(err, runtime.CloseAll(pxT, gridT, out)) }()
	err = vision.RunInto(ctx, []runtime.NamedTensor{{Name: models.PixelValues, Tensor: pxT}, {Name: models.GridTHW, Tensor: gridT}},
		[]runtime.NamedTensor{{Name: models.ImageFeatures, Tensor: out}})
	return feats, err
}

// AnswerText is the SFT target for the option letter: the paper's
// "<think>…</think><answer>X</answer>" format with a short rationale naming
// the option.
func AnswerText(letter, option string) string {
	return "<think>The image shows " + option + ".</think><answer>" + letter + "</answer>"
}

// Row encodes one prompt (question, options, image) with answer (may be
// empty for a rollout prompt). The loss span is the answer.
func (p *Prep) Row(ctx context.Context, question string, options []string, imagePath, answer string) (Row, *Image, error) {
	var im *Image
	vq := tokenizer.VQAPrompt{System: p.system, Question: question, Options: options, Answer: answer}
	if imagePath != "" {
		var err error
		if im, err = p.Image(ctx, imagePath); err != nil {
			return Row{}, nil, err
		}
		vq.ImageTokens = im.Pixels.ImageTokens()
	}
	enc, err := p.vlm.Tokenizer().EncodePrompt(vq)
	if err != nil {
		return Row{}, nil, fmt.Errorf("%w: %w", ErrData, err)
	}
	r := Row{IDs: enc.IDs, AnswerStart: enc.AnswerStart, AnswerEnd: enc.AnswerEnd}
	if answer == "" {
		r.IDs = enc.IDs[:enc.AnswerStart]
	}
	if im != nil {
		r.Features, r.Grids = im.Features, [][3]int64{im.Pixels.GridTHW}
		if p.pixels {
			r.Pixels = im.Pixels.Values
		}
	}
	return r, im, nil
}

// SFTRows returns one row per item: the prompt and AnswerText of its
// correct option.
func (p *Prep) SFTRows(ctx context.Context, items []data.Item) ([]Row, error) {
	rows := make([]Row, 0, len(items))
	for i, it := range items {
		idx, err := it.AnswerIndex()
		if err != nil {
			return nil, fmt.Errorf("%w: item %d (%s): %w", ErrData, i, it.QuestionID, err)
		}
		opts := it.Options()
		r, _, err := p.Row(ctx, it.Question, opts, it.ImageFile(), AnswerText(data.Letters[idx:idx+1], opts[idx]))
		if err != nil {
			return nil, fmt.Errorf("item %d (%s): %w", i, it.QuestionID, err)
		}
		rows = append(rows, r)
	}
	return rows, nil
}
