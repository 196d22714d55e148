package models

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/tokenizer"
)

// Sentinel errors of the runner (VLM and its roles).
var (
	// ErrBadRequest: a request cannot be turned into a prompt (empty
	// question, too few or too many options, an image that cannot be
	// processed, a token id outside the vocabulary).
	ErrBadRequest = errors.New("models: invalid request")
	// ErrImageTokens: the <|image_pad|> slots of a prompt do not match the
	// images given with it.
	ErrImageTokens = errors.New("models: image tokens do not match the images")
	// ErrRole: the bundle does not declare the role a call needs (e.g.
	// Score on a bundle whose decoder outputs logits).
	ErrRole = errors.New("models: bundle lacks the role")
	// ErrLetterToken: an option letter is not a single token of the
	// tokenizer, so the fast option-scoring path cannot read it.
	ErrLetterToken = errors.New("models: option letter is not a single token")
	// ErrAnswerToken: "<answer>" is not a single token of the tokenizer,
	// so ReasonOptions.AnswerTemperature cannot find the answer letter.
	ErrAnswerToken = errors.New("models: \"<answer>\" is not a single token")
	// ErrClosed: the VLM or Decoder was used after Close.
	ErrClosed = errors.New("models: use after close")
)

// VLMOptions configures Open. The zero value runs on Device auto with ORT's
// default threads, loading ONNX Runtime through runtime.Open's search.
type VLMOptions struct {
	// Device selects the execution provider (auto, cpu, cuda, cuda:N).
	Device runtime.Device
	// Env is an open ONNX Runtime environment to share; nil opens one
	// (with LibraryPath and Logger) that Close releases.
	Env *runtime.Env
	// LibraryPath names libonnxruntime when Env is nil; "" searches
	// ($MEDGR2_ORT_LIB, third_party/ort, system folders).
	LibraryPath string
	// IntraOpThreads is the per-session operator thread pool; 0 lets ORT
	// choose (one per physical core).
	IntraOpThreads int
	// Logger receives the CUDA → CPU fallback line and session debug lines;
	// nil discards them.
	Logger *slog.Logger
	// DType picks the graphs' dtype variant (see LoadDevice); "" is
	// DTypeAuto.
	DType DType
	// DisableCPUArena turns off ONNX Runtime's CPU memory arena for the
	// bundle's sessions: memory a large request took goes back to the
	// system instead of staying reserved for the process's life (the
	// server's choice; see runtime.SessionOptions).
	DisableCPUArena bool
	// MaxPromptTokens bounds every prompt row (text and image tokens): a
	// longer one is refused with ErrBadRequest before any model work, as
	// its attention costs memory with the square of its length. 0 means
	// DefaultMaxPromptTokens.
	MaxPromptTokens int
}

// DefaultMaxPromptTokens is VLMOptions.MaxPromptTokens's default.
const DefaultMaxPromptTokens = 2048

// VLM is an opened model bundle: the vision encoder, embedding and decoder
// sessions, the tokenizer and the image processor. Its methods are safe for
// concurrent use by many goroutines: every call keeps its own KV cache and
// buffers, and ORT sessions run concurrently. Close must not race with
// calls in flight.
type VLM struct {
	bundle *Bundle
	tok    *tokenizer.Tokenizer
	// chat is the folder's own chat template (tokenizer_config.json), or
	// nil when it has none: prompts are then rendered by
	// tokenizer.VQAPrompt, which equals Qwen2-VL's template.
	chat   *tokenizer.ChatTemplate
	image  preprocessing.Config
	env    *runtime.Env
	ownEnv bool

	vision, embed, decoder *runtime.Session
	// keep is num_logits_to_keep = 1, fed to a decoder that declares it
	// (Names.LogitsToKeep); nil otherwise. Inputs are read-only, so calls
	// share it.
	keep *runtime.Tensor

	cfg       ArchConfig
	st        SpecialTokens
	reward    bool // the decoder outputs scores, not logits
	maxPrompt int  // VLMOptions.MaxPromptTokens, default applied
}

// Open loads the bundle in dir (see Load: manifest, files, ONNX signatures,
// weights), the tokenizer and ONNX Runtime, and opens the three sessions.
// Errors name the problem: a *BundleError (missing or truncated file,
// signature mismatch, bad tokenizer) or a *runtime.LibraryError when ONNX
// Runtime cannot be found (its message says to run `make ort`).
func Open(ctx context.Context, dir string, opts VLMOptions) (_ *VLM, err error) {
	b, err := LoadDevice(ctx, dir, opts.DType, opts.Device)
	if err != nil {
		return nil, err
	}
	m := b.Manifest
	v := &VLM{bundle: b, cfg: m.Architecture, st: m.SpecialTokens, reward: m.HasRole(RoleReward), env: opts.Env,
		maxPrompt: cmp.Or(opts.MaxPromptTokens, DefaultMaxPromptTokens)}
	if v.tok, err = openTokenizer(b); err != nil {
		return nil, err
	}
	if v.chat, err = openChatTemplate(b); err != nil {
		return nil, err
	}
	v.image = imageConfig(m.ImageProcessor)
	if v.env == nil {
		v.env, err = runtime.Open(ctx, runtime.Options{LibraryPath: opts.LibraryPath, Logger: opts.Logger})
		if err != nil {
			return nil, fmt.Errorf("models: open %s: %w", dir, err)
		}
		v.ownEnv = true
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, v.Close())
		}
	}()
	so := runtime.SessionOptions{Device: opts.Device, IntraOpThreads: opts.IntraOpThreads, DisableCPUArena: opts.DisableCPUArena}
	if v.vision, err = v.openSession(ctx, m.Files.VisionEncoder, so); err != nil {
		return nil, err
	}
	if v.embed, err = v.openSession(ctx, m.Files.EmbedTokens, so); err != nil {
		return nil, err
	}
	// Decode steps change the sequence length on every call: memory
	// patterns planned for one shape would be thrown away each step.
	so.DisableMemPattern = true
	if v.decoder, err = v.openSession(ctx, m.Files.Decoder, so); err != nil {
		return nil, err
	}
	if b.Names.LogitsToKeep {
		if v.keep, err = runtime.NewTensor([]int64{1}, []int64{1}); err != nil {
			return nil, fmt.Errorf("models: %s: %w", NumLogitsToKeep, err)
		}
	}
	return v, nil
}

// openChatTemplate loads the chat template of the bundle's
// tokenizer_config.json; nil when the folder has no such file or the file
// sets no template. A template that cannot be compiled (an unsupported
// construct) is a *BundleError naming the file.
func openChatTemplate(b *Bundle) (*tokenizer.ChatTemplate, error) {
	path := b.Path(HFTokenizerConfig)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var fields map[string]json.RawMessage
	if err == nil {
		err = json.Unmarshal(data, &fields)
	}
	if err != nil {
		return nil, &BundleError{Dir: b.Dir, File: HFTokenizerConfig, Err: fmt.Errorf("%w: %v", ErrBadTokenizer, err)}
	}
	if _, ok := fields["chat_template"]; !ok {
		return nil, nil
	}
	c, err := tokenizer.ParseChatTemplate(path, data)
	if err != nil {
		return nil, &BundleError{Dir: b.Dir, File: HFTokenizerConfig, Err: fmt.Errorf("%w: %w", ErrBadTokenizer, err)}
	}
	return c, nil
}

// openTokenizer loads tokenizer.json and checks it against the manifest.
func openTokenizer(b *Bundle) (*tokenizer.Tokenizer, error) {
	m := b.Manifest
	fail := func(err error) error {
		return &BundleError{Dir: b.Dir, File: m.Files.Tokenizer, Err: fmt.Errorf("%w: %w", ErrBadTokenizer, err)}
	}
	tok, err := tokenizer.Load(b.TokenizerPath())
	if err != nil {
		return nil, fail(err)
	}
	if tok.VocabSize() > m.Architecture.VocabSize {
		return nil, fail(fmt.Errorf("vocabulary of %d ids exceeds the model's vocab_size %d", tok.VocabSize(), m.Architecture.VocabSize))
	}
	for name, id := range map[string]int{tokenizer.ImagePad: m.SpecialTokens.ImagePad,
		tokenizer.VisionStart: m.SpecialTokens.VisionStart, tokenizer.VisionEnd: m.SpecialTokens.VisionEnd} {
		if got, ok := tok.TokenID(name); !ok || got != id {
			return nil, fail(fmt.Errorf("token %s has id %d (found %v), manifest says %d", name, got, ok, id))
		}
	}
	return tok, nil
}

// imageConfig maps the manifest's image processor to preprocessing.Config.
func imageConfig(ip ImageProcessor) preprocessing.Config {
	c := preprocessing.Config{
		PatchSize: ip.PatchSize, TemporalPatchSize: ip.TemporalPatchSize, MergeSize: ip.MergeSize,
		MinPixels: ip.MinPixels, MaxPixels: ip.MaxPixels,
	}
	copy(c.ImageMean[:], ip.ImageMean)
	copy(c.ImageStd[:], ip.ImageStd)
	return c.WithDefaults()
}

// openSession opens one of the bundle's graphs; errors name the file.
func (v *VLM) openSession(ctx context.Context, rel string, so runtime.SessionOptions) (*runtime.Session, error) {
	s, err := v.env.NewSession(ctx, v.bundle.Path(rel), so)
	if err != nil {
		return nil, &BundleError{Dir: v.bundle.Dir, File: rel, Err: err}
	}
	return s, nil
}

// Close releases the sessions and, when Open created it, the ONNX Runtime
// handle. It is nil-safe and idempotent.
func (v *VLM) Close() error {
	if v == nil {
		return nil
	}
	err := errors.Join(v.vision.Close(), v.embed.Close(), v.decoder.Close(), v.keep.Close())
	v.vision, v.embed, v.decoder, v.keep = nil, nil, nil, nil
	if v.ownEnv {
		err = errors.Join(err, v.env.Close())
		v.ownEnv = false
	}
	return err
}

// Bundle returns the loaded bundle (folder and manifest).
func (v *VLM) Bundle() *Bundle { return v.bundle }

// Manifest returns the bundle's manifest.
func (v *VLM) Manifest() *Manifest { return v.bundle.Manifest }

// Tokenizer returns the bundle's tokenizer.
func (v *VLM) Tokenizer() *tokenizer.Tokenizer { return v.tok }

// ImageConfig returns the image processor settings (defaults filled in).
func (v *VLM) ImageConfig() preprocessing.Config { return v.image }

// Device returns the device the decoder runs on (never auto).
func (v *VLM) Device() runtime.Device { return v.decoder.Device() }

// Sessions returns the vision encoder, embedding and decoder sessions, for
// inspection (doctor) and benchmarks.
func (v *VLM) Sessions() (vision, embed, decoder *runtime.Session) {
	return v.vision, v.embed, v.decoder
}

// checkOpen returns ErrClosed after Close.
func (v *VLM) checkOpen() error {
	if v == nil || v.decoder == nil {
		return fmt.Errorf("%w: VLM", ErrClosed)
	}
	return nil
}
