package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/backend"
	"github.com/medgr2/medgr2/server/batch"
	"github.com/medgr2/medgr2/server/cache"
	"github.com/medgr2/medgr2/server/fake"
	"github.com/medgr2/medgr2/server/queue"
)

// serveFlags are the flags of `medgr2 serve`.
type serveFlags struct {
	addr, model, generator, reward, device, redisURL, keysFile, jobsDir, out    string
	maxBatch, queueSize, maxImage, jobWorkers, threads, reasonTokens, maxPrompt int
	heavyPrompt, maxReqImages, mergeBuckets                                     int
	maxBody                                                                     int64
	maxDelay, timeout, drain, fakeBatch, fakeItem, claimIdle, jobTTL            time.Duration
	idleRelease                                                                 time.Duration
	rateLimit                                                                   float64
	fakeModels, redisVolatile, noArena, responseCache, jpegReduce               bool
	workers                                                                     int
	pixelCache, maxDecoded                                                      int64
	dtype                                                                       models.DType
}

func parseServeFlags(args []string, stderr io.Writer) (serveFlags, error) {
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&f.model, "model", "", "VQA model bundle directory (also serves chat); default "+defaultBundles+"/vqa if present")
	fs.StringVar(&f.generator, "generator", "", "generator model bundle directory; default "+defaultBundles+"/generator if present")
	fs.StringVar(&f.reward, "reward", "", "reward model bundle directory; default "+defaultBundles+"/reward if present")
	fs.StringVar(&f.device, "device", "auto", "execution device: auto, cpu, cuda or cuda:N")
	fs.IntVar(&f.workers, "workers", 0, "batches run at once per model role on the shared sessions (0: one per core, GOMAXPROCS)")
	fs.IntVar(&f.threads, "threads", 0, "ONNX Runtime intra-op threads per session (0: one per physical core with one worker, else cores/workers)")
	fs.IntVar(&f.reasonTokens, "reason-max-tokens", 256, "token budget of VQA reason mode")
	fs.IntVar(&f.maxPrompt, "max-prompt-tokens", models.DefaultMaxPromptTokens, "longest prompt a model runs, text and image tokens (longer: 400)")
	fs.Var(&f.dtype, "dtype", models.DTypeUsage)
	fs.DurationVar(&f.idleRelease, "idle-release", backend.DefaultIdleRelease, "after this long without a model call, with resident memory 20% over its level after loading, reopen the model sessions so the memory of a spike goes back (negative: never)")
	fs.BoolVar(&f.noArena, "no-cpu-arena", false, "turn ONNX Runtime's CPU arena off: memory returns after a spike, batches run several times slower (medgr2 diag memory measures both)")
	fs.StringVar(&f.out, "out", "out/serve", "state folder: the job database ("+queue.BoltFile+", when not on Redis) and the server key ("+serverKeyFile+")")
	fs.StringVar(&f.redisURL, "redis", "", "Redis URL (redis://host:port/db) for the shared cache and job queue; empty: the job database in --out")
	fs.BoolVar(&f.redisVolatile, "redis-allow-volatile", false, "accept a Redis without appendonly persistence (a Redis crash then loses queued jobs and results)")
	fs.DurationVar(&f.claimIdle, "claim-idle", queue.DefaultClaimIdle, "Redis: a job item running this long on a replica that stopped answering is taken over by another")
	fs.DurationVar(&f.jobTTL, "job-ttl", queue.DefaultResultTTL, "how long a finished or cancelled job's status and results are kept")
	fs.StringVar(&f.keysFile, "api-keys-file", "", "file with one API key per line (also env MEDGR2_API_KEYS); none: auth off")
	fs.StringVar(&f.jobsDir, "jobs-dir", "", "directory server-side job files may be read from; empty: disabled")
	fs.IntVar(&f.maxBatch, "max-batch", 16, "largest model batch")
	fs.IntVar(&f.maxReqImages, "max-request-images", server.DefaultMaxRequestImages, "images one /v1/score or chat request may carry (more: 400)")
	fs.IntVar(&f.mergeBuckets, "merge-buckets", 0, "a VQA batch with room also takes prompts of up to this many shorter length buckets (25% apart), padded up (0: equal buckets only)")
	fs.IntVar(&f.heavyPrompt, "heavy-prompt-tokens", server.DefaultHeavyPromptTokens, "VQA prompts of about this many tokens or more, and reasoning requests, run on at most workers−1 workers at once, so short requests behind them keep a worker (negative: off)")
	fs.DurationVar(&f.maxDelay, "max-delay", 0, "longest wait for a batch to fill while the model is idle (0: dispatch when free)")
	fs.IntVar(&f.queueSize, "queue-size", 512, "requests waiting per model before 429")
	fs.Int64Var(&f.maxBody, "max-body", 32<<20, "request body limit in bytes")
	fs.BoolVar(&f.responseCache, "response-cache", true, "keep responses by model, image hash and parameters (in process, or in Redis with --redis); false: every request runs the model, as for measuring it")
	fs.Int64Var(&f.pixelCache, "pixel-cache-bytes", 0, "bound of the cache of processed images, keyed by image hash (0: 256 MiB, -1: off)")
	fs.IntVar(&f.maxImage, "max-image-bytes", server.DefaultMaxImageBytes, "per-image limit in bytes")
	fs.BoolVar(&f.jpegReduce, "jpeg-reduce", true, "decode a JPEG much larger than the model's input at 1/2, 1/4 or 1/8 scale (each pixel the mean of those it covers; the pixel limits then bound the reduced image, the stored size at most 4× the pixel limit, 1× for progressive JPEGs); false: always the full decode")
	fs.Int64Var(&f.maxDecoded, "max-image-decoded-bytes", server.DefaultMaxImageDecodedBytes, "per-image limit of the decoded buffer in bytes, from the header before decoding (width×height×bytes per pixel; over it: 413)")
	fs.Float64Var(&f.rateLimit, "rate-limit", 0, "requests per second per API key (0: unlimited)")
	fs.DurationVar(&f.timeout, "request-timeout", 60*time.Second, "per-request model deadline")
	fs.DurationVar(&f.drain, "drain", 30*time.Second, "graceful shutdown budget")
	fs.IntVar(&f.jobWorkers, "job-workers", 0, "job items run at once on this replica (0: 2×max-batch, -1: none)")
	fs.BoolVar(&f.fakeModels, "fake-models", false, "serve the built-in deterministic fake models (tests, bench)")
	fs.DurationVar(&f.fakeBatch, "fake-batch-cost", 20*time.Millisecond, "fake model cost per batch")
	fs.DurationVar(&f.fakeItem, "fake-item-cost", 500*time.Microsecond, "fake model cost per item")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if f.claimIdle <= 0 || f.jobTTL <= 0 {
		return f, usageError("serve: --claim-idle and --job-ttl must be positive")
	}
	if fs.NArg() > 0 {
		return f, usageError(fmt.Sprintf("serve: unexpected arguments %q", fs.Args()))
	}
	if f.workers < 0 {
		return f, usageError(fmt.Sprintf("serve: --workers %d: want 0 (one per core) or more", f.workers))
	}
	if f.workers == 0 {
		// One worker per core with one intra-op thread each measured best
		// on the real mix (server/backend BenchmarkServe).
		f.workers = goruntime.GOMAXPROCS(0)
	}
	if f.threads < 0 {
		return f, usageError(fmt.Sprintf("serve: --threads %d: want 0 (automatic) or more", f.threads))
	}
	if f.mergeBuckets < 0 {
		return f, usageError(fmt.Sprintf("serve: --merge-buckets %d: want 0 (equal buckets only) or more", f.mergeBuckets))
	}
	return f, nil
}

func runServe(ctx context.Context, args []string, _, stderr io.Writer) (err error) {
	f, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	models, decode, closeModels, err := serveModels(ctx, f, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeModels()) }()
	keys, err := server.LoadAPIKeys(f.keysFile)
	if err != nil {
		return err
	}
	cfg := server.Config{
		Batch:   batch.Config{MaxBatch: f.maxBatch, MaxDelay: f.maxDelay, QueueSize: f.queueSize, Workers: f.workers},
		MaxBody: f.maxBody, MaxImageBytes: f.maxImage, MaxImageDecodedBytes: f.maxDecoded, APIKeys: keys, RateLimit: f.rateLimit,
		HeavyPromptTokens: f.heavyPrompt, MergeBuckets: f.mergeBuckets, MaxRequestImages: f.maxReqImages, RequestTimeout: f.timeout, JobsDir: f.jobsDir, JobWorkers: f.jobWorkers, Logger: log, DecodeImage: decode,
	}
	closeJobs, err := serveJobs(ctx, f, &cfg, log)
	if err != nil {
		return err
	}
	if !f.responseCache {
		cfg.Cache = cache.Off{}
	}
	defer func() { err = errors.Join(err, closeJobs()) }()
	s, err := server.New(cfg, models)
	if err != nil {
		return err
	}
	return s.Run(ctx, f.addr, f.drain)
}

// serveModels picks the models to serve: the fakes with --fake-models,
// else the bundles the flags name (or those under defaultBundles), opened
// through backend.Open. It returns the image decoder to use (nil: the
// server's default) and a function that releases the models.
func serveModels(ctx context.Context, f serveFlags, log *slog.Logger) (server.Models, server.DecodeFunc, func() error, error) {
	none := func() error { return nil }
	given := f.model != "" || f.generator != "" || f.reward != ""
	if f.fakeModels {
		if given {
			return server.Models{}, nil, none, usageError("serve: --fake-models cannot be combined with --model/--generator/--reward")
		}
		o := fake.Options{BatchCost: f.fakeBatch, ItemCost: f.fakeItem}
		return server.Models{VQA: fake.NewVQA(o), Generator: fake.NewGenerator(o), Reward: fake.NewReward(o), Chat: fake.NewChat(o)}, nil, none, nil
	}
	dev, err := runtime.ParseDevice(f.device)
	if err != nil {
		return server.Models{}, nil, none, usageError(fmt.Sprintf("serve: --device: %v", err))
	}
	o := backend.Options{VQA: f.model, Generator: f.generator, Reward: f.reward, Device: dev, Threads: f.threads, Workers: f.workers, PixelCacheBytes: f.pixelCache,
		ReasonMaxTokens: f.reasonTokens, MaxPromptTokens: f.maxPrompt, DisableCPUArena: f.noArena, DType: f.dtype, Logger: log, IdleRelease: f.idleRelease}
	if !given {
		o.VQA, o.Generator, o.Reward = defaultBundle("vqa"), defaultBundle("generator"), defaultBundle("reward")
		if o.VQA == "" && o.Generator == "" && o.Reward == "" {
			return server.Models{}, nil, none, usageError("serve: no models: pass --model DIR (and/or --generator DIR, --reward DIR) with " +
				"model bundles, or build " + defaultBundles + "/{vqa,generator,reward}; --fake-models serves fakes for tests and benchmarks")
		}
		log.Info("serve: using the default bundles", "vqa", o.VQA, "generator", o.Generator, "reward", o.Reward)
	}
	m, err := backend.Open(ctx, o)
	if err != nil {
		return server.Models{}, nil, none, fmt.Errorf("serve: %w", err)
	}
	lim := server.Config{MaxImageBytes: f.maxImage, MaxImageDecodedBytes: f.maxDecoded}.ImageLimits()
	opts := preprocessing.Options{Limits: lim}
	if f.jpegReduce {
		opts.ReduceFor = m.ImageConfig()
	}
	return m.Server(), m.DecodeImage(server.PreprocessingDecoderWith(opts)), m.Close, nil
}

// serverKeyFile holds the server's secret in the state folder: it tags
// job ids (so a job Redis lost is reported lost, not unknown) and keys the
// image hashes written to logs.
const serverKeyFile = "server.key"

// serveJobs sets cfg's job store (and, with Redis, its cache): the
// embedded database in f.out, or Redis after checking that it persists
// with appendonly. It returns the function that closes them.
func serveJobs(ctx context.Context, f serveFlags, cfg *server.Config, log *slog.Logger) (func() error, error) {
	none := func() error { return nil }
	if err := os.MkdirAll(f.out, 0o700); err != nil {
		return none, fmt.Errorf("serve: --out: %w", err)
	}
	key, err := loadServerKey(filepath.Join(f.out, serverKeyFile))
	if err != nil {
		return none, err
	}
	cfg.LogKey = key
	if f.redisURL == "" {
		st, err := queue.OpenBolt(f.out, queue.BoltConfig{ResultTTL: f.jobTTL})
		if err != nil {
			return none, fmt.Errorf("serve: %w", err)
		}
		cfg.Jobs = st
		log.Info("serve: jobs in the embedded database", "path", filepath.Join(f.out, queue.BoltFile), "job_ttl", f.jobTTL.String())
		return st.Close, nil
	}
	client, err := openRedis(ctx, f.redisURL)
	if err != nil {
		return none, err
	}
	if err := queue.CheckDurable(ctx, client); err != nil {
		if !f.redisVolatile {
			client.Close()
			return none, fmt.Errorf("serve: %w; or pass --redis-allow-volatile to accept losing jobs", err)
		}
		log.Warn("serve: Redis is not durable; --redis-allow-volatile accepts losing jobs on a Redis crash", "err", err)
	}
	cfg.Cache = cache.NewRedis(client, "")
	cfg.Jobs = queue.NewRedis(client, queue.RedisConfig{ClaimIdle: f.claimIdle, ResultTTL: f.jobTTL, IDKey: key})
	log.Info("serve: using Redis for cache and jobs", "addr", client.Options().Addr, "claim_idle", f.claimIdle.String(), "job_ttl", f.jobTTL.String())
	return client.Close, nil
}

// loadServerKey reads the hex key at path, creating it (mode 0600) on
// first use.
func loadServerKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) < 16 {
			return nil, fmt.Errorf("serve: %s is not a hex key of at least 16 bytes (delete it to make a new one)", path)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("serve: server key: %w", err)
	}
	k, err := queue.NewIDKey()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("serve: server key: %w", err)
	}
	_, err = fmt.Fprintln(f, hex.EncodeToString(k))
	if err = errors.Join(err, f.Close()); err != nil {
		return nil, fmt.Errorf("serve: server key: %w", err)
	}
	return k, nil
}

func openRedis(ctx context.Context, u string) (*redis.Client, error) {
	opt, err := redis.ParseURL(u)
	if err != nil {
		return nil, usageError(fmt.Sprintf("serve: --redis: %v", err))
	}
	c := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("serve: redis %s: %w", opt.Addr, err)
	}
	return c, nil
}
