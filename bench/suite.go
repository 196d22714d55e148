package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Goals of the suite's ratios (see [Ratios]).
const (
	GoalSaturationVsRaw = 0.95 // server throughput at saturation ÷ raw batched throughput, at least
	GoalAddedP50MS      = 1.0  // server p50 at low load − raw serial p50, in ms, at most
	GoalBatchingGain    = 4.0  // server throughput at 32 clients ÷ raw serial throughput, at least
)

// lowLoadRequests bounds the serial runs (raw serial, server low load),
// which only measure latency.
const lowLoadRequests = 200

// SuiteConfig describes a suite run: one model measured raw, through
// Direct, and behind a server at URL that serves the same model (with its
// cache off, so every request reaches the model). Zero fields take the
// defaults.
type SuiteConfig struct {
	// Direct answers one batch of n items straight through the model: the
	// raw baseline, without HTTP, JSON or a batcher. Required.
	Direct func(ctx context.Context, n int) error
	URL    string // server base URL on loopback, e.g. http://127.0.0.1:8080
	Path   string // endpoint; default /v1/vqa
	Body   []byte // JSON request body sent every time
	APIKey string // sent as a bearer token when not empty
	// MaxBatch is the raw baseline's batch size, which should be the
	// server's; the saturation run uses 2×MaxBatch clients. Default 32.
	MaxBatch int
	// Requests bounds each run (items, for the raw runs); the serial runs
	// stop at min(Requests, 200). Default 2000.
	Requests int
	// Duration bounds each run; default 20s.
	Duration time.Duration
}

// SuiteResult is a suite run: each scenario's report by name, and the
// ratios the goals are stated in.
type SuiteResult struct {
	Raw        Report `json:"raw"`        // direct, MaxBatch items per call
	RawSerial  Report `json:"raw_serial"` // direct, one item per call
	LowLoad    Report `json:"low_load"`   // server, 1 closed-loop client
	Clients32  Report `json:"clients_32"` // server, 32 closed-loop clients
	Saturation Report `json:"saturation"` // server, 2×MaxBatch closed-loop clients
	Ratios     Ratios `json:"ratios"`
}

// Ratios compare the server runs with the raw runs. A ratio whose
// baseline answered nothing is 0.
type Ratios struct {
	// SaturationVsRaw is Saturation.Throughput ÷ Raw.Throughput
	// (goal ≥ GoalSaturationVsRaw).
	SaturationVsRaw float64 `json:"saturation_vs_raw"`
	// AddedP50MS is LowLoad.P50MS − RawSerial.P50MS, in milliseconds
	// (goal ≤ GoalAddedP50MS).
	AddedP50MS float64 `json:"added_p50_ms"`
	// BatchingGain is Clients32.Throughput ÷ RawSerial.Throughput
	// (goal ≥ GoalBatchingGain).
	BatchingGain float64 `json:"batching_gain_32"`
}

// ErrNoBaseline reports a suite without a Direct function.
var ErrNoBaseline = errors.New("bench: suite needs a Direct baseline")

// RunSuite warms the model up with one direct item, then runs the raw
// baseline (batched, then serial) and the server at low load, 32 clients
// and saturation, in that order. It fails when the warm-up or a server
// run cannot start; errors inside a run are counted in its report.
func RunSuite(ctx context.Context, cfg SuiteConfig) (SuiteResult, error) {
	if cfg.Direct == nil {
		return SuiteResult{}, ErrNoBaseline
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 32
	}
	if cfg.Requests <= 0 {
		cfg.Requests = 2000
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 20 * time.Second
	}
	if err := cfg.Direct(ctx, 1); err != nil {
		return SuiteResult{}, fmt.Errorf("bench: baseline warm-up: %w", err)
	}
	serial := min(cfg.Requests, lowLoadRequests)
	var r SuiteResult
	r.Raw = Direct(ctx, "raw", cfg.MaxBatch, cfg.Requests, cfg.Duration, cfg.Direct)
	r.RawSerial = Direct(ctx, "raw serial", 1, serial, cfg.Duration, cfg.Direct)
	runs := []struct {
		dst      *Report
		name     string
		clients  int
		requests int
	}{
		{&r.LowLoad, "server low load", 1, serial},
		{&r.Clients32, "server 32 clients", 32, cfg.Requests},
		{&r.Saturation, "server saturation", 2 * cfg.MaxBatch, cfg.Requests},
	}
	for _, c := range runs {
		rep, err := Run(ctx, Config{Name: c.name, URL: cfg.URL, Path: cfg.Path, Body: cfg.Body, APIKey: cfg.APIKey,
			Clients: c.clients, Requests: c.requests, Duration: cfg.Duration})
		if err != nil {
			return SuiteResult{}, err
		}
		*c.dst = rep
	}
	r.Ratios = Ratios{
		SaturationVsRaw: ratio(r.Saturation.Throughput, r.Raw.Throughput),
		AddedP50MS:      r.LowLoad.P50MS - r.RawSerial.P50MS,
		BatchingGain:    ratio(r.Clients32.Throughput, r.RawSerial.Throughput),
	}
	return r, nil
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

// WriteSummary prints the ratios against their goals, one per line.
func (r Ratios) WriteSummary(w io.Writer) error {
	_, err := fmt.Fprintf(w, "server/raw throughput at saturation: %.3f (goal >= %g)\n"+
		"added p50 latency at low load:       %.3f ms (goal <= %g)\n"+
		"batching gain, 32 clients vs b1:     %.2fx (goal >= %g)\n",
		r.SaturationVsRaw, GoalSaturationVsRaw, r.AddedP50MS, GoalAddedP50MS, r.BatchingGain, GoalBatchingGain)
	return err
}
