package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/medgr2/medgr2/bench"
)

// benchFlags are the flags of `medgr2 bench`.
type benchFlags struct {
	url, path, key           string
	requests, data, out      string
	model, tokenizer, device string
	mix, threads, workers    int
	clients, maxRequests     int
	rounds                   int
	cpuProfile               string
	maxBatch, mergeBuckets   int
	rate                     float64
	duration                 time.Duration
	fakeBatch, fakeItem      time.Duration
	asJSON, pixelCache       bool
	args                     []string // the command line, for the record
}

// Files `medgr2 bench --out DIR` writes.
const (
	benchJSONFile = "bench.json"
	benchPNGFile  = "bench.png"
)

// Values of --model that name no folder.
const (
	benchModelFake   = "fake"
	benchModelRandom = "random"
)

func parseBenchFlags(args []string, stderr io.Writer) (benchFlags, error) {
	f := benchFlags{args: args}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.url, "url", "", "load a running server on loopback with the mix (one run); empty: run the suite, server vs raw baseline, in this process")
	fs.StringVar(&f.path, "path", "/v1/vqa", "endpoint to load (with --url)")
	fs.StringVar(&f.key, "api-key", "", "bearer API key (with --url)")
	fs.IntVar(&f.clients, "clients", 32, "closed-loop clients (with --url)")
	fs.Float64Var(&f.rate, "rate", 0, "open-loop requests per second (with --url; 0: closed loop)")
	fs.StringVar(&f.requests, "requests", "", "request mix: an OmniMedVQA JSON or JSONL file (question, options, image_path relative to the file), "+
		"sent in file order; empty: the default mix of real images from --data")
	fs.StringVar(&f.data, "data", filepath.Join("..", "shared", "data"), "shared data folder the default mix is built from")
	fs.IntVar(&f.mix, "mix", 64, "requests in the default mix (knee X-ray and sperm OmniMedVQA items, PneumoniaMNIST, BUSI, BCCD)")
	fs.IntVar(&f.maxRequests, "max-requests", 2000, "requests per run (bound; the 1-client runs stop at 200)")
	fs.DurationVar(&f.duration, "duration", 20*time.Second, "time per run (bound; requests in flight then are drained)")
	fs.IntVar(&f.rounds, "rounds", 3, "suite: run the five runs this many times, forwards then backwards, each run with the whole --max-requests and --duration; every ratio is the median of the rounds'")
	fs.StringVar(&f.model, "model", defaultBundles+"/vqa", "suite: VQA bundle to measure; \"random\" exports a random default-size bundle "+
		"(with --tokenizer) to a temporary folder; \"fake\": the fake model")
	fs.StringVar(&f.tokenizer, "tokenizer", filepath.Join("models", "testdata", "vqa_tokenizer.json"), "suite: tokenizer.json for --model random")
	fs.StringVar(&f.device, "device", "auto", "suite: execution device of --model: auto, cpu, cuda or cuda:N")
	fs.IntVar(&f.workers, "workers", 0, "suite: server batch workers, and raw callers (0: one per core, as serve)")
	fs.IntVar(&f.threads, "threads", 0, "suite: ONNX Runtime intra-op threads (0: as serve, cores/workers)")
	fs.IntVar(&f.maxBatch, "max-batch", 16, "suite: server largest batch, and raw batch size (serve's default)")
	fs.IntVar(&f.mergeBuckets, "merge-buckets", 0, "suite: shorter prompt-length buckets a server batch with room may take, and the raw batches follow (as serve; 0: equal buckets only)")
	fs.BoolVar(&f.pixelCache, "pixel-cache", false, "suite: keep the server's cache of processed images on (the raw baseline has none; off, every request is decoded)")
	fs.DurationVar(&f.fakeBatch, "fake-batch-cost", 20*time.Millisecond, "suite: fake model cost per batch")
	fs.DurationVar(&f.fakeItem, "fake-item-cost", 500*time.Microsecond, "suite: fake model cost per item")
	fs.StringVar(&f.out, "out", "", "suite: write "+benchJSONFile+" (the record) and "+benchPNGFile+" (req/s and p50 per run) to this folder")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON instead of a table")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "suite: write a Go CPU profile of the whole suite (server and raw runs, this process) to this file, for `go tool pprof`")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, usageError(fmt.Sprintf("bench: unexpected arguments %q", fs.Args()))
	}
	if f.rounds < 1 {
		return f, usageError("bench: --rounds must be ≥ 1")
	}
	if f.workers < 0 || f.threads < 0 || f.mergeBuckets < 0 || f.maxBatch < 1 || f.mix < 1 {
		return f, usageError("bench: --workers, --threads and --merge-buckets must be ≥ 0, --max-batch and --mix ≥ 1")
	}
	if f.workers == 0 {
		f.workers = goruntime.GOMAXPROCS(0)
	}
	return f, nil
}

// runBench implements `medgr2 bench`: one load run of the mix against
// --url, or bench.RunSuite on the model of --model, raw and behind an
// in-process server.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseBenchFlags(args, stderr)
	if err != nil {
		return err
	}
	mix, err := benchMix(f)
	if err != nil {
		return err
	}
	bodies, err := bench.Bodies(mix)
	if err != nil {
		return err
	}
	if f.url != "" {
		rep, err := bench.Run(ctx, bench.Config{Name: "server", URL: f.url, Path: f.path, Bodies: bodies, APIKey: f.key,
			Clients: f.clients, Rate: f.rate, Requests: f.maxRequests, Duration: f.duration})
		if err != nil {
			return err
		}
		if f.asJSON {
			return writeJSON(stdout, rep)
		}
		return bench.WriteTable(stdout, []bench.Report{rep})
	}
	if f.cpuProfile != "" {
		stop, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	rec, err := benchSuite(ctx, f, mix, bodies)
	if err != nil {
		return err
	}
	if f.out != "" {
		if err := writeBenchRecord(f.out, rec); err != nil {
			return err
		}
	}
	if f.asJSON {
		return writeJSON(stdout, rec)
	}
	if err := bench.WriteTable(stdout, rec.Suite.Reports()); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	return rec.Suite.Ratios.WriteSummary(stdout)
}

// benchMix loads --requests, or builds the default mix from --data.
func benchMix(f benchFlags) ([]bench.Item, error) {
	if f.requests == "" {
		return bench.DefaultMix(f.data, f.mix)
	}
	mix, err := bench.LoadMix(f.requests)
	if _, numErr := strconv.Atoi(f.requests); numErr == nil && errors.Is(err, fs.ErrNotExist) {
		return nil, usageError(fmt.Sprintf("bench: --requests names the request mix file; %q is not one (the count per run is --max-requests)", f.requests))
	}
	return mix, err
}

// benchRecord is the record of a suite run, as `medgr2 bench --json`
// prints it and --out writes it: the results and how they were made.
type benchRecord struct {
	Command string    `json:"command"` // the command line
	Date    time.Time `json:"date"`    // when the run started (UTC)
	// LoadAvg is /proc/loadavg when the run started: other work on the
	// machine skews every number.
	LoadAvg string `json:"loadavg,omitempty"`
	// OtherCPU is the share of the machine's CPU time (0–1) that other
	// processes used during the suite (/proc/stat less this process);
	// -1 when unknown. Above a few percent the numbers are skewed.
	OtherCPU float64 `json:"other_cpu"`
	Cores    int     `json:"cores"` // runtime.NumCPU
	Model    string  `json:"model"` // --model
	Workers  int     `json:"workers"`
	Threads  int     `json:"threads"` // 0: the backend's choice (cores/workers)
	MaxBatch int     `json:"max_batch"`
	// MergeBuckets is --merge-buckets: the shorter buckets a batch may
	// take (server.Config.MergeBuckets).
	MergeBuckets int               `json:"merge_buckets"`
	Mix          string            `json:"mix"`     // --requests, or the default mix and its size
	Sources      map[string]int    `json:"sources"` // requests of the mix per source
	Suite        bench.SuiteResult `json:"suite"`
}

// newBenchRecord describes the run f is about to make on mix.
func newBenchRecord(f benchFlags, mix []bench.Item) benchRecord {
	rec := benchRecord{Command: strings.TrimSpace("medgr2 bench " + strings.Join(f.args, " ")), Date: time.Now().UTC().Truncate(time.Second),
		Cores: goruntime.NumCPU(), Model: f.model, Workers: f.workers, Threads: f.threads, MaxBatch: f.maxBatch,
		MergeBuckets: f.mergeBuckets, Mix: f.requests, Sources: map[string]int{}}
	if rec.Mix == "" {
		rec.Mix = fmt.Sprintf("default mix of %d requests from %s", len(mix), f.data)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		rec.LoadAvg = strings.TrimSpace(string(b))
	}
	for _, it := range mix {
		src, _, _ := strings.Cut(it.Source, "-")
		rec.Sources[src]++
	}
	return rec
}

// writeBenchRecord writes rec as dir/bench.json and its chart as
// dir/bench.png.
func writeBenchRecord(dir string, rec benchRecord) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: --out: %w", err)
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, benchJSONFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: --out: %w", err)
	}
	png, err := os.Create(filepath.Join(dir, benchPNGFile))
	if err != nil {
		return fmt.Errorf("bench: --out: %w", err)
	}
	err = bench.WritePNG(png, rec.Suite.Reports())
	return errors.Join(err, png.Close())
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// startCPUProfile starts a CPU profile into path; stop ends it and closes
// the file.
func startCPUProfile(path string) (stop func(), err error) {
	out, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("bench: cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return nil, fmt.Errorf("bench: cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		out.Close()
	}, nil
}
