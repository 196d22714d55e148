package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Goals of the suite's ratios (see [Ratios]).
const (
	GoalSaturationVsRaw = 0.95 // server throughput at saturation ÷ raw batched throughput, at least
	GoalAddedP50MS      = 1.0  // server p50 at 1 client − raw serial p50, in ms, at most
	GoalBatchingGain    = 2.0  // server throughput at 32 clients ÷ server throughput at 1 client, at least
)

// lowLoadRequests bounds the serial runs (raw serial, server at 1
// client), which only measure latency.
const lowLoadRequests = 200

// SuiteConfig describes a suite run: one model on a request mix,
// measured raw through Direct and behind a server at URL that serves the
// same model in the same process (with its caches off, so every request
// reaches the model and every image is decoded). Zero fields take the
// defaults.
type SuiteConfig struct {
	// Direct does for the mix's requests at the given indices all the
	// work the server does for them (decode, preprocess, model) as one
	// model call: the raw baseline, without HTTP, JSON or a batcher.
	// Required.
	Direct func(ctx context.Context, batch []int) error
	// Bodies are the mix as JSON request bodies, which Direct's indices
	// index; the server runs send them in turn. Required.
	Bodies [][]byte
	// Batches are the raw batched run's calls, as index lists into
	// Bodies, each at most MaxBatch long: the batches the server's
	// batcher forms at saturation (one prompt-length bucket each, see
	// Chunks). Default Chunks of all of Bodies in order.
	Batches [][]int
	URL     string // server base URL on loopback, e.g. http://127.0.0.1:8080
	Path    string // endpoint; default /v1/vqa
	APIKey  string // sent as a bearer token when not empty
	// Role is the server role whose padding counters (PaddingMetric) the
	// server runs report; default "vqa".
	Role string
	// MaxBatch is the server's largest batch; default 16.
	MaxBatch int
	// Workers is how many batches the server runs at once, and so how
	// many callers the raw batched run has; default 1. The saturation
	// run uses 2×MaxBatch×Workers clients.
	Workers int
	// Requests bounds each run (items, for the raw runs); the serial
	// runs stop at min(Requests, 200). Default 2000.
	Requests int
	// Duration bounds each run; default 20s.
	Duration time.Duration
	// Rounds repeats the five runs that many times, in turn forwards
	// and backwards (raw … saturation, then saturation … raw), each run
	// with the whole of Requests and Duration (shorter runs weigh their
	// ramp-up and drain more), so that a drift of the machine during the
	// suite (another process, the CPU clock) falls on both sides of every
	// ratio. Each ratio is then the median of the rounds'. Default 1.
	Rounds int
}

// SuiteResult is a suite run: each scenario's report by name, and the
// ratios the goals are stated in.
type SuiteResult struct {
	Raw        Report `json:"raw"`        // direct: Workers callers, Batches
	RawSerial  Report `json:"raw_serial"` // direct: 1 caller, one request per call, the mix in order
	LowLoad    Report `json:"low_load"`   // server, 1 closed-loop client, the mix in order
	Clients32  Report `json:"clients_32"` // server, 32 closed-loop clients
	Saturation Report `json:"saturation"` // server, 2×MaxBatch×Workers closed-loop clients
	// Ratios are the medians of the rounds' ratios; the reports above
	// are those of the round whose SaturationVsRaw is the median.
	Ratios Ratios `json:"ratios"`
	// Rounds holds each round's ratios when SuiteConfig.Rounds > 1.
	Rounds []Ratios `json:"rounds,omitempty"`
}

// Ratios compare the runs of a suite. A ratio whose baseline answered
// nothing is 0.
type Ratios struct {
	// SaturationVsRaw is Saturation.Throughput ÷ Raw.Throughput
	// (goal ≥ GoalSaturationVsRaw).
	SaturationVsRaw float64 `json:"saturation_vs_raw"`
	// AddedP50MS is LowLoad.P50MS − RawSerial.P50MS, in milliseconds:
	// what the server adds to one request alone (goal ≤ GoalAddedP50MS).
	AddedP50MS float64 `json:"added_p50_ms"`
	// BatchingGain is Clients32.Throughput ÷ LowLoad.Throughput: the
	// server at 32 clients over the server at 1 (goal ≥
	// GoalBatchingGain).
	BatchingGain float64 `json:"batching_gain_32"`
}

// Met says which goals the ratios meet.
func (r Ratios) Met() (saturation, latency, batching bool) {
	return r.SaturationVsRaw >= GoalSaturationVsRaw, r.AddedP50MS <= GoalAddedP50MS, r.BatchingGain >= GoalBatchingGain
}

// Errors of RunSuite's configuration.
var (
	ErrNoBaseline = errors.New("bench: suite needs a Direct baseline")
	ErrNoBodies   = errors.New("bench: suite needs a request mix (Bodies)")
)

func (c *SuiteConfig) defaults() error {
	if c.Direct == nil {
		return ErrNoBaseline
	}
	if len(c.Bodies) == 0 {
		return ErrNoBodies
	}
	if c.Role == "" {
		c.Role = "vqa"
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 16
	}
	if c.Workers <= 0 {
		c.Workers = 1
	}
	if c.Requests <= 0 {
		c.Requests = 2000
	}
	if c.Duration <= 0 {
		c.Duration = 20 * time.Second
	}
	if c.Rounds <= 0 {
		c.Rounds = 1
	}
	if len(c.Batches) == 0 {
		all := make([]int, len(c.Bodies))
		for i := range all {
			all[i] = i
		}
		c.Batches = Chunks([][]int{all}, c.MaxBatch)
	}
	for _, b := range c.Batches {
		for _, i := range b {
			if i < 0 || i >= len(c.Bodies) {
				return fmt.Errorf("bench: suite batch index %d outside the mix of %d", i, len(c.Bodies))
			}
		}
	}
	return nil
}

// RunSuite warms the model up with every request of the mix once, alone
// (a request that fails there fails the suite, naming it), and every raw
// batch once (so that no run pays for the first use of a shape), then runs
// the raw baseline (batched, then serial) and the server at 1 client, 32
// clients and saturation, in that order (backwards in every second of
// SuiteConfig.Rounds), reading the server's padding counters around each
// server run. It fails when the configuration is wrong or a server run
// cannot start; errors inside a run are counted in its report.
func RunSuite(ctx context.Context, cfg SuiteConfig) (SuiteResult, error) {
	if err := cfg.defaults(); err != nil {
		return SuiteResult{}, err
	}
	for i := range cfg.Bodies {
		if err := cfg.Direct(ctx, []int{i}); err != nil {
			return SuiteResult{}, fmt.Errorf("bench: baseline warm-up, request %d of the mix: %w", i, err)
		}
	}
	for k, b := range cfg.Batches {
		if err := cfg.Direct(ctx, b); err != nil {
			return SuiteResult{}, fmt.Errorf("bench: baseline warm-up, batch %d %v: %w", k, b, err)
		}
	}
	requests, dur, serial := cfg.Requests, cfg.Duration, min(cfg.Requests, lowLoadRequests)
	rounds := make([]SuiteResult, cfg.Rounds)
	for k := range rounds {
		r := &rounds[k]
		runs := []func() error{
			func() error {
				r.Raw = Direct(ctx, DirectConfig{Name: "raw", Batches: cfg.Batches, Callers: cfg.Workers, Items: requests, Duration: dur}, cfg.Direct)
				return nil
			},
			func() error {
				r.RawSerial = Direct(ctx, DirectConfig{Name: "raw serial", Batches: Singles(len(cfg.Bodies)), Items: serial, Duration: dur}, cfg.Direct)
				return nil
			},
		}
		for _, c := range []struct {
			dst      *Report
			name     string
			clients  int
			requests int
		}{
			{&r.LowLoad, "server 1 client", 1, serial},
			{&r.Clients32, "server 32 clients", 32, requests},
			{&r.Saturation, "server saturation", 2 * cfg.MaxBatch * cfg.Workers, requests},
		} {
			runs = append(runs, func() (err error) {
				*c.dst, err = serverRun(ctx, cfg, Config{Name: c.name, URL: cfg.URL, Path: cfg.Path, Bodies: cfg.Bodies, APIKey: cfg.APIKey,
					Clients: c.clients, Requests: c.requests, Duration: dur})
				return err
			})
		}
		if k%2 == 1 {
			slices.Reverse(runs)
		}
		for _, run := range runs {
			if err := run(); err != nil {
				return SuiteResult{}, err
			}
		}
		r.Ratios = Ratios{
			SaturationVsRaw: ratio(r.Saturation.Throughput, r.Raw.Throughput),
			AddedP50MS:      r.LowLoad.P50MS - r.RawSerial.P50MS,
			BatchingGain:    ratio(r.Clients32.Throughput, r.LowLoad.Throughput),
		}
	}
	if len(rounds) == 1 {
		return rounds[0], nil
	}
	each := func(f func(Ratios) float64) []float64 {
		v := make([]float64, len(rounds))
		for k, r := range rounds {
			v[k] = f(r.Ratios)
		}
		return v
	}
	sat := each(func(q Ratios) float64 { return q.SaturationVsRaw })
	res := rounds[medianIndex(sat)]
	res.Ratios = Ratios{
		SaturationVsRaw: median(sat),
		AddedP50MS:      median(each(func(q Ratios) float64 { return q.AddedP50MS })),
		BatchingGain:    median(each(func(q Ratios) float64 { return q.BatchingGain })),
	}
	for _, r := range rounds {
		res.Rounds = append(res.Rounds, r.Ratios)
	}
	return res, nil
}

// median returns the median of v (the mean of the middle two when
// len(v) is even).
func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianIndex returns the index in v of its lower median.
func medianIndex(v []float64) int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(v[a], v[b]) })
	return idx[(len(v)-1)/2]
}

// serverRun is Run with the server's padding counters read before and
// after.
func serverRun(ctx context.Context, s SuiteConfig, cfg Config) (Report, error) {
	before, err := ReadPadding(ctx, s.URL, s.Role)
	if err != nil {
		return Report{}, err
	}
	rep, err := Run(ctx, cfg)
	if err != nil {
		return Report{}, err
	}
	after, err := ReadPadding(ctx, s.URL, s.Role)
	if err != nil {
		return Report{}, err
	}
	rep.Padding = after.Since(before)
	return rep, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Reports returns the five runs in the order RunSuite made them.
func (r SuiteResult) Reports() []Report {
	return []Report{r.Raw, r.RawSerial, r.LowLoad, r.Clients32, r.Saturation}
}

// WriteSummary prints the ratios against their goals, one per line, each
// marked met or not met.
func (r Ratios) WriteSummary(w io.Writer) error {
	sat, lat, bat := r.Met()
	_, err := fmt.Fprintf(w, "server/raw throughput at saturation: %.3f (goal >= %g): %s\n"+
		"added p50 latency at 1 client:       %.3f ms (goal <= %g): %s\n"+
		"batching gain, 32 clients vs 1:      %.2fx (goal >= %g): %s\n",
		r.SaturationVsRaw, GoalSaturationVsRaw, metWord(sat), r.AddedP50MS, GoalAddedP50MS, metWord(lat),
		r.BatchingGain, GoalBatchingGain, metWord(bat))
	return err
}

func metWord(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}
