package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/server/batch"
	"github.com/medgr2/medgr2/server/cache"
	"github.com/medgr2/medgr2/server/model"
	"github.com/medgr2/medgr2/server/queue"
)

// Models holds the model for each role; a nil role answers 404
// model_unavailable on its endpoint.
type Models struct {
	VQA       model.VQA
	Generator model.Generator
	Reward    model.Reward
	Chat      model.Chat
}

// Config configures a Server. Zero fields take the documented defaults.
type Config struct {
	// Batch is the batching policy applied to every role (Name is set per role).
	Batch batch.Config
	// MaxBody is the request body limit in bytes; default 32 MiB.
	MaxBody int64
	// MaxImageBytes is the per-image limit in bytes; default 16 MiB.
	MaxImageBytes int
	// MaxImagePixels bounds width·height for the default decoder; default 50M.
	MaxImagePixels int
	// MaxImageDecodedBytes bounds the decoded image buffer for the default
	// decoder, from the header before decoding (width·height times the
	// bytes per pixel of its colour model; preprocessing.Limits); default
	// DefaultMaxImageDecodedBytes.
	MaxImageDecodedBytes int64
	// DecodeImage decodes image bytes; default PreprocessingDecoder with
	// the three limits above (PNG, JPEG, GIF,
	// BMP, TIFF, WebP, DICOM); backend.Models.DecodeImage wraps it to
	// process images for the model in the request's goroutine.
	DecodeImage DecodeFunc
	// APIKeys are the accepted bearer keys; none means no authentication
	// (a warning is logged).
	APIKeys []string
	// RateLimit is requests per second per key (0: unlimited); RateBurst
	// is the bucket size (default 2·RateLimit, at least 1).
	RateLimit float64
	RateBurst int
	// MaxRequestImages bounds the images of one /v1/score or chat request
	// (more: 400 naming the limit), so that one request cannot hold more
	// than that many processed images; default DefaultMaxRequestImages.
	MaxRequestImages int
	// HeavyPromptTokens marks long VQA prompts (about this many tokens or
	// more, text and image, counted by a model.PromptCounter), and with
	// them every reasoning request (it generates): at most
	// Batch.HeavyWorkers workers (default Workers−1) run them at once, so
	// with several workers short requests queued behind long ones keep a
	// worker. Default DefaultHeavyPromptTokens; negative: no request is
	// heavy.
	HeavyPromptTokens int
	// MergeBuckets lets a VQA batch with room take requests of up to this
	// many shorter prompt-length buckets (batch.Config.MergeKeys with
	// batch.LengthKey keys; each bucket is one batch.LengthStep), padded
	// up to its longest, when the model counts prompt tokens. 0, the
	// default, batches equal buckets only: on CPU a batch costs about its
	// token slots, so the padding a merge adds costs more than the larger
	// batch saves (docs/2026-12-08-serving-merge-buckets.md).
	MergeBuckets int
	// RequestTimeout bounds each model request; default 60s.
	RequestTimeout time.Duration
	// Cache stores responses; default an in-process LRU of 4096 entries.
	Cache cache.Cache
	// CacheTTL is how long cached responses live; default 1h.
	CacheTTL time.Duration
	// Jobs is the job store. Default: a queue.Bolt in a temporary folder
	// that Close removes, so jobs do not outlive the process; `medgr2
	// serve` passes a durable one (its --out folder, or Redis).
	Jobs queue.Store
	// JobsDir is where server-side job files may be read from; empty
	// disables path jobs.
	JobsDir string
	// JobWorkers is how many job items this replica runs at once; default
	// 2·Batch.MaxBatch. Negative disables the job worker (submit only).
	JobWorkers int
	// Consumer names this replica in the job queue; default host-pid.
	Consumer string
	// Logger receives structured logs; default slog.Default().
	Logger *slog.Logger
	// LogKey keys the HMAC-SHA256 that logs show in place of an image's
	// SHA-256, so log lines cannot be joined to images elsewhere; default
	// a random key per process (`medgr2 serve` keeps one in its --out
	// folder, so hashes compare across restarts).
	LogKey []byte
}

// DefaultMaxRequestImages is Config.MaxRequestImages's default: 64
// images, about 300 MB of processed pixels at the default bundles'
// max_pixels (200,704 pixels, 24 bytes each as float32 patches).
const DefaultMaxRequestImages = 64

// DefaultHeavyPromptTokens is Config.HeavyPromptTokens's default.
const DefaultHeavyPromptTokens = 1024

// Defaults of the image limits in Config.
const (
	DefaultMaxImageBytes  = 16 << 20   // MaxImageBytes: 16 MiB
	DefaultMaxImagePixels = 50_000_000 // MaxImagePixels
	// DefaultMaxImageDecodedBytes (MaxImageDecodedBytes) is 256 MiB: a
	// 7000×7000 16-bit grey PNG (98 MB) or 8-bit RGB one (196 MB) passes,
	// the same image in 16-bit RGB (392 MB) is a 413.
	DefaultMaxImageDecodedBytes int64 = 256 << 20
)

// ImageLimits returns the default decoder's limits from c, with the
// defaults above for fields ≤ 0.
func (c Config) ImageLimits() preprocessing.Limits {
	lim := preprocessing.Limits{MaxBytes: int64(c.MaxImageBytes), MaxPixels: int64(c.MaxImagePixels), MaxDecodedBytes: c.MaxImageDecodedBytes}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = DefaultMaxImageBytes
	}
	if lim.MaxPixels <= 0 {
		lim.MaxPixels = DefaultMaxImagePixels
	}
	if lim.MaxDecodedBytes <= 0 {
		lim.MaxDecodedBytes = DefaultMaxImageDecodedBytes
	}
	return lim
}

func (c *Config) defaults() {
	if c.MaxBody <= 0 {
		c.MaxBody = 32 << 20
	}
	if c.MaxRequestImages <= 0 {
		c.MaxRequestImages = DefaultMaxRequestImages
	}
	if c.HeavyPromptTokens == 0 {
		c.HeavyPromptTokens = DefaultHeavyPromptTokens
	}
	lim := c.ImageLimits()
	c.MaxImageBytes, c.MaxImagePixels, c.MaxImageDecodedBytes = int(lim.MaxBytes), int(lim.MaxPixels), lim.MaxDecodedBytes
	if c.DecodeImage == nil {
		c.DecodeImage = PreprocessingDecoder(c.ImageLimits())
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 60 * time.Second
	}
	if c.Cache == nil {
		c.Cache = cache.NewMemory(4096)
	}
	if c.CacheTTL <= 0 {
		c.CacheTTL = time.Hour
	}
	if c.Batch.MaxBatch <= 0 {
		c.Batch.MaxBatch = 8
	}
	if c.JobWorkers == 0 {
		c.JobWorkers = 2 * c.Batch.MaxBatch
	}
	if c.Consumer == "" {
		h, _ := os.Hostname()
		c.Consumer = h + "-" + strconv.Itoa(os.Getpid())
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RateBurst <= 0 {
		c.RateBurst = max(1, int(2*c.RateLimit))
	}
	if len(c.LogKey) == 0 {
		c.LogKey = make([]byte, 32)
		_, _ = rand.Read(c.LogKey) // crypto/rand does not fail on supported platforms
	}
}

// Server is the medgr2 REST server.
type Server struct {
	cfg    Config       // defaults applied
	models Models       // loaded roles
	keys   []string     // accepted API keys
	limits *limiters    // per-key rate limits
	met    *metrics     // per-server registry
	log    *slog.Logger // structured logs
	engine *gin.Engine  // routes

	vqa   *batch.Batcher[model.VQAInput, model.VQAOutput]   // nil if no VQA model
	gen   *batch.Batcher[model.GenerateInput, []model.Item] // nil if no generator
	score *batch.Batcher[model.ScoreInput, float64]         // nil if no reward model
	chat  *batch.Batcher[model.ChatInput, model.ChatOutput] // nil if no chat model

	ready      atomic.Bool        // warm-up done
	draining   atomic.Bool        // shutdown started
	workerStop context.CancelFunc // stops the job worker
	workerDone chan struct{}      // closed when the job worker exits
	ownJobs    func() error       // closes and removes a job store New opened; nil if given
	done       *throughput        // items the models finished recently (for Retry-After)
	started    time.Time          // when New ran (the models' "created" in /v1/models)
}

// New builds a server for models; call Run (or use Handler with your own
// http.Server, then Warmup and Close).
func New(cfg Config, models Models) (*Server, error) {
	cfg.defaults()
	if cfg.JobsDir != "" {
		if st, err := os.Stat(cfg.JobsDir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("server: jobs dir %q is not a directory: %v", cfg.JobsDir, err)
		}
	}
	s := &Server{cfg: cfg, models: models, keys: cfg.APIKeys, met: newMetrics(), log: cfg.Logger, done: &throughput{now: time.Now}, started: time.Now(),
		limits: &limiters{rps: rate.Limit(cfg.RateLimit), burst: cfg.RateBurst, byKey: map[string]*rate.Limiter{}}}
	if s.cfg.Jobs == nil {
		if err := s.tempJobs(); err != nil {
			return nil, err
		}
	}
	if len(s.keys) == 0 {
		s.log.Warn("server: no API keys configured; authentication is OFF")
	}
	s.startBatchers()
	s.routes()
	s.startWorker()
	return s, nil
}

// tempJobs opens the default job store in a temporary folder.
func (s *Server) tempJobs() error {
	dir, err := os.MkdirTemp("", "medgr2-jobs-")
	if err != nil {
		return fmt.Errorf("server: job store: %w", err)
	}
	st, err := queue.OpenBolt(dir, queue.BoltConfig{})
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("server: job store: %w", err)
	}
	s.cfg.Jobs = st
	s.ownJobs = func() error { return errors.Join(st.Close(), os.RemoveAll(dir)) }
	return nil
}

// newBatcher builds a batcher for role with metrics hooks.
// heavyKey marks the role's heavy requests (batch.Config.HeavyKey; 0:
// none).
func newBatcher[In, Out any](s *Server, role string, heavyKey, mergeKeys int, run batch.RunFunc[In, Out]) *batch.Batcher[In, Out] {
	bc := s.cfg.Batch
	bc.Name = role
	bc.HeavyKey = heavyKey
	bc.MergeKeys = mergeKeys
	observe := s.met.onBatch(role)
	bc.OnBatch = func(n int, d time.Duration, err error) {
		observe(n, d, err)
		s.done.add(n)
	}
	b := batch.New(bc, run)
	s.met.registerDepth(role, b.Depth)
	return b
}

func (s *Server) startBatchers() {
	if m := s.models.VQA; m != nil {
		run, heavy, merge := m.AnswerBatch, 0, 0
		if _, ok := m.(model.PromptCounter); ok {
			run = meterPadding(s.met, "vqa", run)
			if s.cfg.HeavyPromptTokens > 0 {
				heavy = batch.LengthKey(s.cfg.HeavyPromptTokens, 0)
			}
			merge = max(s.cfg.MergeBuckets, 0) // length keys: a lower key is a shorter prompt
		}
		s.vqa = newBatcher(s, "vqa", heavy, merge, run)
	}
	if m := s.models.Generator; m != nil {
		s.gen = newBatcher(s, "generator", 0, 0, m.GenerateBatch)
	}
	if m := s.models.Reward; m != nil {
		s.score = newBatcher(s, "reward", 0, 0, m.ScoreBatch)
	}
	if m := s.models.Chat; m != nil {
		s.chat = newBatcher(s, "chat", 0, 0, m.ChatBatch)
	}
}

func (s *Server) routes() {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, p any) {
		s.fail(c, fmt.Errorf("server: handler panicked: %v", p))
	}))
	e.Use(s.observe)
	e.NoRoute(func(c *gin.Context) {
		s.fail(c, fmt.Errorf("%w: %s %s", ErrNoRoute, c.Request.Method, c.Request.URL.Path))
	})
	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", s.handleReady)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{})))
	v1 := e.Group("/v1", s.authenticate)
	v1.POST("/vqa", s.handleVQA)
	v1.POST("/generate", s.handleGenerate)
	v1.POST("/score", s.handleScore)
	v1.POST("/chat/completions", s.handleChat)
	v1.GET("/models", s.handleModels)
	v1.POST("/jobs", s.handleJobSubmit)
	v1.GET("/jobs/:id", s.handleJobStatus)
	v1.GET("/jobs/:id/results", s.handleJobResults)
	v1.DELETE("/jobs/:id", s.handleJobCancel)
	s.engine = e
}

// Handler returns the HTTP handler with every route.
func (s *Server) Handler() http.Handler { return s.engine }

func (s *Server) handleReady(c *gin.Context) {
	if s.draining.Load() {
		s.fail(c, ErrShuttingDown)
		return
	}
	if !s.ready.Load() {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "warming up"})
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), time.Second)
	defer cancel()
	if err := s.cfg.Jobs.Ping(ctx); err != nil {
		s.log.Error("readyz: job store unavailable", "request_id", c.GetString(ctxRequestID), "err", err)
		c.Header("Retry-After", strconv.Itoa(s.retryAfter(ctx, err)))
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable"})
		return
	}
	// The model list goes only to a caller with a key (or with auth off).
	if _, ok := s.callerKey(c); ok || len(s.keys) == 0 {
		c.JSON(http.StatusOK, gin.H{"status": "ready", "models": s.modelNames()})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

func (s *Server) modelNames() map[string]string {
	out := map[string]string{}
	add := func(role string, i model.Info) { out[role] = i.Name + "@" + i.Version }
	if s.models.VQA != nil {
		add("vqa", s.models.VQA.Info())
	}
	if s.models.Generator != nil {
		add("generator", s.models.Generator.Info())
	}
	if s.models.Reward != nil {
		add("reward", s.models.Reward.Info())
	}
	if s.models.Chat != nil {
		add("chat", s.models.Chat.Info())
	}
	return out
}

// Warmup runs one tiny request through every loaded model, then marks the
// server ready.
func (s *Server) Warmup(ctx context.Context) error {
	gray := image.NewGray(image.Rect(0, 0, 28, 28))
	gray.Set(14, 14, color.Gray{Y: 255})
	img := model.Image{Decoded: gray}
	var errs []error
	if s.vqa != nil {
		in := model.VQAInput{Image: img, ImageHash: "warmup", Question: "warm-up", Options: []string{"a", "b"}}
		key, err := s.vqaKey(&in)
		if err == nil {
			_, _, err = s.vqa.Submit(ctx, in, key)
		}
		errs = append(errs, err)
	}
	if s.gen != nil {
		_, _, err := s.gen.Submit(ctx, model.GenerateInput{Image: img, ImageHash: "warmup", NumItems: 1}, 0)
		errs = append(errs, err)
	}
	if s.score != nil {
		_, _, err := s.score.Submit(ctx, model.ScoreInput{Image: img, ImageHash: "warmup", Question: "warm-up", Options: []string{"a", "b"}}, 0)
		errs = append(errs, err)
	}
	if s.chat != nil {
		_, _, err := s.chat.Submit(ctx, model.ChatInput{Messages: []model.ChatMessage{{Role: "user", Text: "hi"}}, MaxTokens: 1}, 0)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("server: warm-up: %w", err)
	}
	s.ready.Store(true)
	return nil
}

// Run serves on addr until ctx ends, then shuts down gracefully: it stops
// accepting connections, lets requests in flight finish, drains the
// batchers and the job worker (unfinished job items are re-queued), all
// within drain.
func (s *Server) Run(ctx context.Context, addr string, drain time.Duration) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server: listen %s: %w", addr, err)
	}
	return s.Serve(ctx, l, drain)
}

// Serve is Run on an existing listener.
func (s *Server) Serve(ctx context.Context, l net.Listener, drain time.Duration) error {
	hs := &http.Server{Handler: s.engine, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	s.log.Info("server: listening", "addr", l.Addr().String())
	go func() {
		if err := s.Warmup(ctx); err != nil {
			s.log.Error("server: warm-up failed", "err", err)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("server: serve: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.log.Info("server: shutting down", "drain", drain)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	err := hs.Shutdown(dctx)
	return errors.Join(err, s.Close(dctx))
}

// Close stops the job worker (items in flight finish within its drain
// time or are re-queued; queued items stay in the store for the next
// start) and drains the batchers. A job store New opened itself is closed.
func (s *Server) Close(ctx context.Context) (err error) {
	s.draining.Store(true)
	if s.workerStop != nil {
		s.workerStop()
		select {
		case <-s.workerDone:
		case <-ctx.Done():
		}
	}
	if s.ownJobs != nil {
		defer func() { err = errors.Join(err, s.ownJobs()); s.ownJobs = nil }()
	}
	var errs []error
	if s.vqa != nil {
		errs = append(errs, s.vqa.Close(ctx))
	}
	if s.gen != nil {
		errs = append(errs, s.gen.Close(ctx))
	}
	if s.score != nil {
		errs = append(errs, s.score.Close(ctx))
	}
	if s.chat != nil {
		errs = append(errs, s.chat.Close(ctx))
	}
	return errors.Join(errs...)
}
