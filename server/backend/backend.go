package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/model"
)

// ErrNoModels reports Options that name no bundle.
var ErrNoModels = errors.New("backend: no model bundle given")

// Options says which bundles Open loads and how. The zero value of a
// tuning field takes the documented default.
type Options struct {
	// VQA, Generator and Reward are bundle folders; "" leaves the role
	// out. One folder may serve several roles (it is opened once).
	VQA, Generator, Reward string
	// Device selects the execution provider (auto, cpu, cuda, cuda:N).
	Device runtime.Device
	// Threads is each session's intra-op thread count. 0 sizes it from
	// Workers: max(1, GOMAXPROCS/Workers) threads when Workers > 1, so
	// that workers × threads ≈ cores; with Workers ≤ 1, ORT chooses (one
	// per physical core).
	Threads int
	// Workers is how many batches the server runs at once on each session
	// (batch.Config.Workers); sessions are safe for concurrent Run. It
	// only sizes Threads; default 1.
	Workers int
	// LibraryPath names libonnxruntime; "" searches as runtime.Open does.
	LibraryPath string
	// Logger receives load and fallback lines; nil discards them.
	Logger *slog.Logger
	// MaxPromptTokens bounds each prompt (text and image tokens); a longer
	// one is a 400 naming the budget. 0 means models.DefaultMaxPromptTokens.
	MaxPromptTokens int
	// DType picks every bundle's graph dtype variant (models.LoadDType);
	// "" is models.DTypeAuto.
	DType models.DType
	// DisableCPUArena turns ONNX Runtime's CPU arena off: memory a large
	// batch took goes back after it, at a large cost in speed (measured
	// with `medgr2 diag memory`: about 5× slower batches, a third of the
	// retained memory). Off by default.
	DisableCPUArena bool
	// ReasonMaxTokens bounds generation in VQA reason mode; default 256.
	ReasonMaxTokens int
	// GenerateMaxTokens bounds each generated sample; default 256.
	GenerateMaxTokens int
	// PixelCacheBytes bounds the cache of processed images that each
	// DecodeImage decoder keeps, keyed by the SHA-256 of the image bytes,
	// so an image sent again (another question about it) is neither
	// decoded nor resized again; the server only decodes on a response
	// cache miss. 0 takes DefaultPixelCacheBytes; negative disables it.
	PixelCacheBytes int64
	// GenerateTemperature samples generator items, with top-p 0.95;
	// default (and any value ≤ 0) 0.7: greedy decoding would make the
	// items of one image identical.
	GenerateTemperature float32
	// IdleRelease gives memory back after a spike: once no model call has
	// run for this long and resident memory is more than ReleaseGrowth
	// over its level after loading, each used bundle is opened afresh
	// and swapped in, and the old sessions (with the ONNX Runtime CPU
	// arena that kept the spike's peak) are closed. Requests keep running
	// on the old sessions until the swap. 0 takes DefaultIdleRelease;
	// negative never releases (VQA.VLM then stays valid until Close).
	IdleRelease time.Duration
}

func (o *Options) defaults() {
	if o.Threads == 0 && o.Workers > 1 {
		o.Threads = max(1, goruntime.GOMAXPROCS(0)/o.Workers)
	}
	if o.ReasonMaxTokens <= 0 {
		o.ReasonMaxTokens = 256
	}
	if o.GenerateMaxTokens <= 0 {
		o.GenerateMaxTokens = 256
	}
	if o.GenerateTemperature <= 0 {
		o.GenerateTemperature = 0.7
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PixelCacheBytes == 0 {
		o.PixelCacheBytes = DefaultPixelCacheBytes
	}
	if o.IdleRelease == 0 {
		o.IdleRelease = DefaultIdleRelease
	}
}

// Models holds the opened bundles and their adapters to server/model.
// Every adapter is safe for concurrent use; Close releases everything.
type Models struct {
	// VQA, Generator, Reward and Chat are nil when their role is not
	// loaded. Chat runs on the VQA bundle (the generator's when there is
	// no VQA bundle).
	VQA       *VQA
	Generator *Generator
	Reward    *Reward
	Chat      *Chat

	env   *runtime.Env
	slots []*slot // one per opened bundle folder
	// release reopens idle bundles to give memory back; nil when off.
	release *releaser
	// shared is the image processor every loaded bundle uses, when they
	// agree; DecodeImage then processes each image once, in the request's
	// goroutine, instead of in the model's batch.
	shared *preprocessing.Config
	// pixelCacheBytes bounds each DecodeImage decoder's cache of
	// processed images (≤ 0: none).
	pixelCacheBytes int64
}

// Open opens ONNX Runtime once and the bundles o names, checks each
// bundle's role (errors wrap models.ErrRole and name the role) and returns
// the adapters. Errors from models.Open (a *models.BundleError, a missing
// ONNX Runtime) are wrapped with the bundle folder.
func Open(ctx context.Context, o Options) (_ *Models, err error) {
	o.defaults()
	if o.VQA == "" && o.Generator == "" && o.Reward == "" {
		return nil, ErrNoModels
	}
	m := &Models{}
	if m.env, err = runtime.Open(ctx, runtime.Options{LibraryPath: o.LibraryPath, Logger: o.Logger}); err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, m.Close())
		}
	}()
	opened := map[string]*slot{}
	load := func(dir string, role models.Role) (*slot, error) {
		if dir == "" {
			return nil, nil
		}
		s, err := m.open(ctx, opened, dir, o)
		if err != nil {
			return nil, err
		}
		if !s.man.HasRole(role) {
			return nil, fmt.Errorf("backend: %s: %w %q (it declares %v)", dir, models.ErrRole, role, s.man.Roles)
		}
		return s, nil
	}
	vqa, err := load(o.VQA, models.RoleVQA)
	if err != nil {
		return nil, err
	}
	gen, err := load(o.Generator, models.RoleGenerator)
	if err != nil {
		return nil, err
	}
	rew, err := load(o.Reward, models.RoleReward)
	if err != nil {
		return nil, err
	}
	m.shared = sharedConfig(m.slots)
	m.pixelCacheBytes = o.PixelCacheBytes
	m.wire(vqa, gen, rew, o)
	if o.IdleRelease > 0 {
		m.release = &releaser{slots: m.slots, idle: o.IdleRelease, rss: residentBytes, trim: trimCHeap, log: o.Logger,
			open: func(ctx context.Context, dir string) (*models.VLM, error) { return m.openVLM(ctx, dir, o) }}
		m.release.start()
	}
	return m, nil
}

// open opens dir once (keyed by its absolute path) on the shared env.
func (m *Models) open(ctx context.Context, opened map[string]*slot, dir string, o Options) (*slot, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("backend: %s: %w", dir, err)
	}
	if s, ok := opened[abs]; ok {
		return s, nil
	}
	v, err := m.openVLM(ctx, dir, o)
	if err != nil {
		return nil, err
	}
	s := newSlot(dir, v)
	opened[abs] = s
	m.slots = append(m.slots, s)
	o.Logger.Info("backend: bundle loaded", "dir", dir, "name", v.Manifest().Name,
		"version", v.Manifest().Version, "roles", v.Manifest().Roles, "device", v.Device().String(),
		"intra_op_threads", o.Threads)
	return s, nil
}

// openVLM opens the bundle in dir on the shared env, as Open and each idle
// release do.
func (m *Models) openVLM(ctx context.Context, dir string, o Options) (*models.VLM, error) {
	v, err := models.Open(ctx, dir, models.VLMOptions{Device: o.Device, Env: m.env, IntraOpThreads: o.Threads, Logger: o.Logger,
		MaxPromptTokens: o.MaxPromptTokens, DisableCPUArena: o.DisableCPUArena, DType: o.DType})
	if err != nil {
		return nil, fmt.Errorf("backend: %s: %w", dir, err)
	}
	return v, nil
}

// wire builds the adapters of the loaded roles.
func (m *Models) wire(vqa, gen, rew *slot, o Options) {
	if vqa != nil {
		m.VQA = &VQA{m: m, s: vqa, reasonTokens: o.ReasonMaxTokens}
	}
	if gen != nil {
		m.Generator = &Generator{m: m, s: gen, maxTokens: o.GenerateMaxTokens, temperature: o.GenerateTemperature}
	}
	if rew != nil {
		m.Reward = &Reward{m: m, s: rew}
	}
	if chat := cmpOr(vqa, gen); chat != nil {
		m.Chat = &Chat{m: m, s: chat}
	}
}

func cmpOr(a, b *slot) *slot {
	if a != nil {
		return a
	}
	return b
}

// sharedConfig returns the image processor all slots' bundles share, or
// nil.
func sharedConfig(slots []*slot) *preprocessing.Config {
	if len(slots) == 0 {
		return nil
	}
	c := slots[0].v.ImageConfig()
	for _, s := range slots[1:] {
		if !reflect.DeepEqual(c, s.v.ImageConfig()) {
			return nil
		}
	}
	return &c
}

// Server returns the loaded roles as server.Models (nil roles stay nil
// interfaces, so the server answers 404 for them).
func (m *Models) Server() server.Models {
	var out server.Models
	if m.VQA != nil {
		out.VQA = m.VQA
	}
	if m.Generator != nil {
		out.Generator = m.Generator
	}
	if m.Reward != nil {
		out.Reward = m.Reward
	}
	if m.Chat != nil {
		out.Chat = m.Chat
	}
	return out
}

// Close releases every bundle and ONNX Runtime. It is nil-safe and must
// not race with calls in flight (close the server first).
func (m *Models) Close() (err error) {
	if m == nil {
		return nil
	}
	m.release.stopRelease()
	m.release = nil
	for _, s := range m.slots {
		err = errors.Join(err, s.close())
	}
	m.slots = nil
	if m.env != nil {
		err = errors.Join(err, m.env.Close())
		m.env = nil
	}
	return err
}

// ImageConfig returns the image processor every loaded bundle uses, or
// nil when they differ. Pass it as preprocessing.Options.ReduceFor to the
// decoder (server.PreprocessingDecoderWith) so that large JPEGs decode at
// reduced scale for it.
func (m *Models) ImageConfig() *preprocessing.Config {
	if m.shared == nil {
		return nil
	}
	c := *m.shared
	return &c
}

// DecodeImage wraps a server decoder (nil: server.PreprocessingDecoderWith
// with the default limits and ImageConfig as Options.ReduceFor, so a JPEG
// much larger than the model's input decodes at reduced scale): after
// decoding it runs the bundles' image processor
// in the request's goroutine and sets model.Image.Pixels, so an image the
// model cannot take (an aspect ratio over 200) is a 400 for that request
// alone, and the batch goroutine only runs the model. When the loaded
// bundles disagree on the image processor it only decodes. The decoder
// keeps an LRU cache of the pixels it made (Options.PixelCacheBytes),
// keyed by the SHA-256 of the bytes: on a hit it returns the cached
// Pixels without decoding (DecodeTime is then 0). Once an image is
// processed its full-size decode is dropped (model.Image.Decoded nil), so
// a request holds each image at the model's size (at most the bundle's
// max_pixels) while it waits for its batch, whatever the upload's size.
func (m *Models) DecodeImage(next server.DecodeFunc) server.DecodeFunc {
	if next == nil {
		next = server.PreprocessingDecoderWith(preprocessing.Options{ReduceFor: m.ImageConfig()})
	}
	var cache *pixelCache
	if m.shared != nil && m.pixelCacheBytes > 0 {
		cache = newPixelCache(m.pixelCacheBytes)
	}
	return func(b []byte) (model.Image, error) {
		var key [32]byte
		if cache != nil {
			key = pixelKey(b)
			if px, ok := cache.get(key); ok {
				return model.Image{Pixels: px}, nil
			}
		}
		t := time.Now()
		img, err := next(b)
		img.DecodeTime = time.Since(t)
		if err != nil || m.shared == nil || img.Decoded == nil {
			return img, err
		}
		t = time.Now()
		if img.Pixels, err = m.shared.Process(img.Decoded); err != nil {
			return model.Image{}, fmt.Errorf("backend: image processor: %w", err)
		}
		img.ProcessTime = time.Since(t)
		img.Decoded = nil
		if cache != nil {
			cache.put(key, img.Pixels)
		}
		return img, nil
	}
}

// pixels returns the processed images for v: the decoder's work where it
// did it for every bundle (DecodeImage), the rest processed here in
// parallel. An image with nothing decoded gives nil pixels (text only).
func (m *Models) pixels(ctx context.Context, v *models.VLM, imgs []model.Image) ([]*preprocessing.Pixels, error) {
	out := make([]*preprocessing.Pixels, len(imgs))
	errs := make([]error, len(imgs))
	sem := make(chan struct{}, goruntime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, img := range imgs {
		if img.Pixels != nil && m.shared != nil {
			out[i] = img.Pixels
			continue
		}
		if img.Decoded == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := ctx.Err(); err != nil {
				errs[i] = err
				return
			}
			px, err := v.ProcessImage(img.Decoded)
			if err != nil {
				err = imageError(i, err)
			}
			out[i], errs[i] = px, err
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// info names a bundle for role.
func info(s *slot, role string) model.Info {
	return model.Info{Name: s.man.Name, Version: s.man.Version, Role: role}
}
