package ortbackend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/medgr2/medgr2/data/eval"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/pipeline"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/tokenizer"
)

// ErrBackend wraps failures of the model calls this package makes.
var ErrBackend = errors.New("ortbackend: model call failed")

// Options configure a Backend. The zero value runs on the CPU with ORT's
// default threads and models.DefaultConfig.
type Options struct {
	// Env is an open ONNX Runtime environment; nil opens one with
	// LibraryPath (or runtime.Open's search).
	Env *runtime.Env
	// LibraryPath names libonnxruntime when Env is nil.
	LibraryPath string
	// Device runs inference and training (auto, cpu, cuda, cuda:N); the
	// zero value is auto.
	Device runtime.Device
	// Threads is the per-session intra-op thread count; 0 lets ORT choose.
	Threads int
	// Arch returns the architecture of new bundles for a vocabulary size;
	// nil means models.DefaultConfig.
	Arch func(vocab int) models.ArchConfig
	// Progress receives training progress lines; nil discards them.
	Progress io.Writer
	// Logger receives device fallback lines; nil discards them.
	Logger *slog.Logger
	// MaxPixels, when above 0, is the max_pixels of new bundles
	// (models.ExportOptions.MaxPixels; the pipeline's model.max_pixels):
	// with the benchmark images' size squared a bundle resizes any image
	// it is given, trained on, served or evaluated, to that resolution. 0
	// keeps Qwen2-VL's default.
	MaxPixels int
}

// Backend implements pipeline.Backend with the project's models run
// through ONNX Runtime: models.Export for new bundles, models.VLM for
// generation, scoring and answering, and train.Engine for SFT, reward
// regression and GRPO. It is safe for concurrent use (pipeline.Options.Jobs):
// every call opens its own sessions, and Options.Progress must then be
// safe for concurrent writes.
type Backend struct {
	opts   Options
	env    *runtime.Env
	ownEnv bool
}

var _ pipeline.Backend = (*Backend)(nil)

// New opens ONNX Runtime (unless opts.Env is given) and returns a Backend.
// A missing library is a *runtime.LibraryError.
func New(ctx context.Context, opts Options) (*Backend, error) {
	b := &Backend{opts: opts, env: opts.Env}
	if b.opts.Arch == nil {
		b.opts.Arch = models.DefaultConfig
	}
	if b.opts.Progress == nil {
		b.opts.Progress = io.Discard
	}
	if b.env == nil {
		env, err := runtime.Open(ctx, runtime.Options{LibraryPath: opts.LibraryPath, Logger: opts.Logger})
		if err != nil {
			return nil, fmt.Errorf("ortbackend: %w", err)
		}
		b.env, b.ownEnv = env, true
	}
	return b, nil
}

// Close releases the environment if New opened it. It is nil-safe.
func (b *Backend) Close() error {
	if b == nil || !b.ownEnv {
		return nil
	}
	return b.env.Close()
}

// Tokenizer trains a byte-level BPE tokenizer with the Qwen2-VL special
// tokens on the corpus and saves it.
func (b *Backend) Tokenizer(ctx context.Context, path string, corpus []string, vocabSize int) error {
	tok, err := tokenizer.TrainBPE(ctx, corpus, tokenizer.TrainOptions{VocabSize: vocabSize,
		AddedTokens: tokenizer.QwenVLSpecialTokens()})
	if err != nil {
		return fmt.Errorf("ortbackend: train tokenizer: %w", err)
	}
	if err := tok.Save(path); err != nil {
		return fmt.Errorf("ortbackend: %w", err)
	}
	return nil
}

// bundleRole maps a pipeline role to the manifest roles of its bundle.
func bundleRole(r pipeline.Role) ([]models.Role, error) {
	switch r {
	case pipeline.RoleVQA:
		return []models.Role{models.RoleVQA}, nil
	case pipeline.RoleGenerator:
		return []models.Role{models.RoleGenerator}, nil
	case pipeline.RoleReward:
		return []models.Role{models.RoleReward}, nil
	}
	return nil, fmt.Errorf("%w: unknown role %q", pipeline.ErrConfig, r)
}

// NewBundle exports a randomly initialised bundle of role.
func (b *Backend) NewBundle(ctx context.Context, dir string, role pipeline.Role, tokPath string, seed uint64) error {
	roles, err := bundleRole(role)
	if err != nil {
		return err
	}
	tok, err := tokenizer.Load(tokPath)
	if err != nil {
		return fmt.Errorf("ortbackend: %w", err)
	}
	_, err = models.Export(ctx, dir, b.opts.Arch(tok.VocabSize()), models.ExportOptions{
		Name: "medgr2-" + string(role), Roles: roles, Tokenizer: tokPath, Seed: seed, MaxPixels: b.opts.MaxPixels})
	if err != nil {
		return fmt.Errorf("ortbackend: export %s: %w", role, err)
	}
	return nil
}

// open opens a bundle on the backend's environment.
func (b *Backend) open(ctx context.Context, dir string) (*models.VLM, error) {
	v, err := models.Open(ctx, dir, models.VLMOptions{Env: b.env, Device: b.opts.Device,
		IntraOpThreads: b.opts.Threads, Logger: b.opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("ortbackend: open %s: %w", dir, err)
	}
	return v, nil
}

// Answerer opens a VQA bundle's fast-path answerer.
func (b *Backend) Answerer(ctx context.Context, dir string) (eval.Answerer, func() error, error) {
	v, err := b.open(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	a, err := models.NewAnswerer(v, models.AnswererOptions{Mode: models.ModeFast})
	if err != nil {
		return nil, nil, errors.Join(err, v.Close())
	}
	return a, v.Close, nil
}

// batchSize is the number of requests per model call.
const batchSize = 32

// Generate writes one sample per request with a generator bundle.
func (b *Backend) Generate(ctx context.Context, dir string, reqs []pipeline.GenRequest, o pipeline.SampleOptions) (_ []pipeline.Generated, err error) {
	v, err := b.open(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, v.Close()) }()
	out := make([]pipeline.Generated, 0, len(reqs))
	for lo := 0; lo < len(reqs); lo += batchSize {
		part := reqs[lo:min(lo+batchSize, len(reqs))]
		mreqs := make([]models.GeneratorRequest, len(part))
		for i, r := range part {
			px, err := pixels(v, r.Image)
			if err != nil {
				return nil, err
			}
			mreqs[i] = models.GeneratorRequest{Pixels: px, Modality: r.Modality, Dataset: r.Dataset,
				ImagePath: r.Image, QuestionID: r.QuestionID, Seed: uint64(lo + i)}
		}
		ro := models.ReasonOptions{MaxNewTokens: o.MaxNewTokens, Temperature: float32(o.Temperature), TopK: o.TopK,
			Seed: o.Seed}
		if o.AnswerTemperature != nil {
			t := float32(*o.AnswerTemperature)
			ro.AnswerTemperature = &t
		}
		samples, err := v.GenerateSamples(ctx, mreqs, ro)
		if err != nil {
			return nil, fmt.Errorf("%w: generate: %w", ErrBackend, err)
		}
		for _, s := range samples {
			g := pipeline.Generated{Item: s.Item, Reasoning: s.Reasoning, Text: s.Text}
			if s.Err != nil {
				g.Err = s.Err.Error()
			}
			out = append(out, g)
		}
		fmt.Fprintf(b.opts.Progress, "\rgenerate %d/%d", len(out), len(reqs))
	}
	fmt.Fprintln(b.opts.Progress)
	return out, nil
}

// Response renders an example's answer as the models write it:
// "<think>reasoning</think><answer>X</answer>".
func Response(ex pipeline.Example) string {
	letter, _ := ex.Item.AnswerLetter()
	return models.ThinkOpen + ex.Reasoning + models.ThinkClose + models.AnswerOpen + letter + models.AnswerClose
}

// Score scores examples with a reward bundle.
func (b *Backend) Score(ctx context.Context, dir string, ex []pipeline.Example) (_ []float64, err error) {
	v, err := b.open(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, v.Close()) }()
	return scoreWith(ctx, v, ex)
}

// scoreWith scores examples with an open reward model, in batches.
func scoreWith(ctx context.Context, v *models.VLM, ex []pipeline.Example) ([]float64, error) {
	out := make([]float64, 0, len(ex))
	for lo := 0; lo < len(ex); lo += batchSize {
		part := ex[lo:min(lo+batchSize, len(ex))]
		reqs := make([]models.RewardRequest, len(part))
		for i, e := range part {
			px, err := pixels(v, e.Item.ImageFile())
			if err != nil {
				return nil, err
			}
			reqs[i] = models.RewardRequest{Pixels: px, Question: e.Item.Question, Options: e.Item.Options(),
				Response: Response(e)}
		}
		s, err := v.Score(ctx, reqs)
		if err != nil {
			return nil, fmt.Errorf("%w: score: %w", ErrBackend, err)
		}
		for _, x := range s {
			out = append(out, float64(x))
		}
	}
	return out, nil
}

// pixels decodes and processes an image file for v; "" is a text-only
// request (nil pixels).
func pixels(v *models.VLM, path string) (*preprocessing.Pixels, error) {
	if path == "" {
		return nil, nil
	}
	img, _, err := preprocessing.DecodeFile(path, preprocessing.DefaultLimits())
	if err != nil {
		return nil, fmt.Errorf("%w: image %s: %w", pipeline.ErrData, path, err)
	}
	px, err := v.ImageConfig().Process(img)
	if err != nil {
		return nil, fmt.Errorf("%w: image %s: %w", pipeline.ErrData, path, err)
	}
	return px, nil
}
