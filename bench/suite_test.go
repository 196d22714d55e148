package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medgr2/medgr2/server/api"
)

// fakeTarget is a loopback server that answers /v1/vqa after a pause with
// a timing field, and counts 10 prompt and 2 padding tokens per request
// on /metrics, as the real server's PaddingMetric does.
func fakeTarget(t *testing.T) string {
	var served atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/vqa", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond)
		served.Add(1)
		json.NewEncoder(w).Encode(api.VQAResponse{Timing: api.Timing{QueueMS: 0.2, ModelMS: 0.5, TotalMS: 0.9, BatchSize: 1}})
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		n := served.Load()
		fmt.Fprintf(w, "# TYPE %s counter\n%s{kind=\"prompt\",role=\"vqa\"} %d\n%s{kind=\"padding\",role=\"vqa\"} %d\n",
			PaddingMetric, PaddingMetric, 10*n, PaddingMetric, 2*n)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL
}

// fakeDirect returns a direct function that records its batches and
// fails when directErr says so.
func fakeDirect(directErr func(call int) error) (direct func(context.Context, []int) error, batches func() [][]int) {
	var mu sync.Mutex
	var seen [][]int
	direct = func(ctx context.Context, b []int) error {
		mu.Lock()
		seen = append(seen, b)
		call := len(seen)
		mu.Unlock()
		time.Sleep(time.Duration(len(b)) * 100 * time.Microsecond)
		return directErr(call)
	}
	return direct, func() [][]int { mu.Lock(); defer mu.Unlock(); return append([][]int(nil), seen...) }
}

func bodies(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(fmt.Sprintf(`{"i":%d}`, i))
	}
	return out
}

func TestRunSuiteNamedResults(t *testing.T) {
	direct, batches := fakeDirect(func(int) error { return nil })
	raw := [][]int{{0, 2}, {1, 3}, {4}}
	r, err := RunSuite(context.Background(), SuiteConfig{Direct: direct, URL: fakeTarget(t), Bodies: bodies(5), Batches: raw,
		MaxBatch: 2, Workers: 2, Requests: 40, Duration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rep             Report
		name, mode      string
		clients, batch  int
		requests, items int
	}{
		{r.Raw, "raw", "direct", 2, 2, 24, 40},
		{r.RawSerial, "raw serial", "direct", 1, 1, 40, 40},
		{r.LowLoad, "server 1 client", "closed", 1, 0, 40, 40},
		{r.Clients32, "server 32 clients", "closed", 32, 0, 40, 40},
		{r.Saturation, "server saturation", "closed", 8, 0, 40, 40},
	}
	for _, tc := range tests {
		got := tc.rep
		if got.Name != tc.name || got.Mode != tc.mode || got.Clients != tc.clients || got.BatchSize != tc.batch ||
			got.Requests != tc.requests || got.Items != tc.items || got.Errors != 0 {
			t.Errorf("%s: %+v", tc.name, got)
		}
		if tc.mode == "closed" {
			// 40 requests: 400 prompt and 80 padding tokens, whatever the
			// counters said before the run.
			if want := (Padding{PromptTokens: 400, PaddingTokens: 80, Share: 80.0 / 480}); got.Padding != want {
				t.Errorf("%s: padding %+v, want %+v", tc.name, got.Padding, want)
			}
			if got.Stages.Responses != 40 || math.Abs(got.Stages.ServerOtherMS-0.2) > 1e-9 {
				t.Errorf("%s: stages %+v", tc.name, got.Stages)
			}
		}
	}
	want := Ratios{
		SaturationVsRaw: r.Saturation.Throughput / r.Raw.Throughput,
		AddedP50MS:      r.LowLoad.P50MS - r.RawSerial.P50MS,
		BatchingGain:    r.Clients32.Throughput / r.LowLoad.Throughput,
	}
	if r.Ratios != want {
		t.Errorf("ratios %+v, want %+v", r.Ratios, want)
	}
	b := batches()
	if len(b) != 5+3+24+40 {
		t.Fatalf("%d direct calls, want 5+3 warm-up, 24 raw batches, 40 serial", len(b))
	}
	for i, want := range append(Singles(5), raw...) {
		if fmt.Sprint(b[i]) != fmt.Sprint(want) {
			t.Errorf("warm-up call %d: %v, want %v", i, b[i], want)
		}
	}
	if got := r.Reports(); len(got) != 5 || got[0].Name != "raw" || got[4].Name != "server saturation" {
		t.Errorf("Reports() = %+v", got)
	}
	var buf bytes.Buffer
	if err := r.Ratios.WriteSummary(&buf); err != nil || strings.Count(buf.String(), "goal") != 3 {
		t.Errorf("summary %q, %v", buf.String(), err)
	}
}

func TestRatiosMet(t *testing.T) {
	tests := []struct {
		r                  Ratios
		sat, lat, batching bool
		summary            string
	}{
		{Ratios{SaturationVsRaw: 0.95, AddedP50MS: 1, BatchingGain: 2}, true, true, true, "met\n"},
		{Ratios{SaturationVsRaw: 0.94, AddedP50MS: 1.01, BatchingGain: 1.99}, false, false, false, "not met\n"},
		{Ratios{SaturationVsRaw: 1.2, AddedP50MS: -0.5, BatchingGain: 0.9}, true, true, false, "(goal >= 2): not met\n"},
	}
	for _, tc := range tests {
		sat, lat, bat := tc.r.Met()
		if sat != tc.sat || lat != tc.lat || bat != tc.batching {
			t.Errorf("%+v: Met() = %v %v %v", tc.r, sat, lat, bat)
		}
		var buf bytes.Buffer
		if err := tc.r.WriteSummary(&buf); err != nil || !strings.HasSuffix(buf.String(), tc.summary) {
			t.Errorf("%+v: summary %q", tc.r, buf.String())
		}
	}
}

// TestRunSuiteFailedBaseline checks that a baseline that answers nothing
// gives zero ratios that still encode as JSON, not NaN or Inf.
func TestRunSuiteFailedBaseline(t *testing.T) {
	direct, _ := fakeDirect(func(call int) error {
		if call > 3 { // the warm-up: two requests, one batch
			return errors.New("boom")
		}
		return nil
	})
	r, err := RunSuite(context.Background(), SuiteConfig{Direct: direct, URL: fakeTarget(t), Bodies: bodies(2), MaxBatch: 2, Requests: 8})
	if err != nil {
		t.Fatal(err)
	}
	if r.Raw.Errors != 4 || r.Raw.BatchSize != 2 || r.Ratios.SaturationVsRaw != 0 {
		t.Fatalf("result %+v", r)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Fatal(err)
	}
}

func TestRunSuiteErrors(t *testing.T) {
	boom := errors.New("boom")
	url := fakeTarget(t)
	ok, _ := fakeDirect(func(int) error { return nil })
	failing, _ := fakeDirect(func(int) error { return boom })
	noMetrics := httptest.NewServer(http.NotFoundHandler())
	defer noMetrics.Close()
	tests := []struct {
		name   string
		cfg    SuiteConfig
		want   error
		substr string
	}{
		{"no baseline", SuiteConfig{URL: url, Bodies: bodies(1)}, ErrNoBaseline, ""},
		{"no mix", SuiteConfig{Direct: ok, URL: url}, ErrNoBodies, ""},
		{"batch outside the mix", SuiteConfig{Direct: ok, URL: url, Bodies: bodies(2), Batches: [][]int{{0, 2}}}, nil, "index 2 outside the mix of 2"},
		{"warm-up fails", SuiteConfig{Direct: failing, URL: url, Bodies: bodies(1)}, boom, "request 0 of the mix"},
		{"remote server", SuiteConfig{Direct: ok, URL: "http://192.0.2.1:8080", Bodies: bodies(1), Requests: 2}, ErrNotLoopback, ""},
		{"no metrics", SuiteConfig{Direct: ok, URL: noMetrics.URL, Bodies: bodies(1), Requests: 2}, ErrMetrics, "404"},
	}
	for _, tc := range tests {
		_, err := RunSuite(context.Background(), tc.cfg)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("%s: err %v, want %v mentioning %q", tc.name, err, tc.want, tc.substr)
		}
	}
}

// TestRunSuiteRounds checks that each round's runs get the whole budget, run forwards
// then backwards, and that each ratio is the median of the rounds'.
func TestRunSuiteRounds(t *testing.T) {
	direct, batches := fakeDirect(func(int) error { return nil })
	raw := [][]int{{0, 2}, {1, 3}, {4}}
	r, err := RunSuite(context.Background(), SuiteConfig{Direct: direct, URL: fakeTarget(t), Bodies: bodies(5), Batches: raw,
		MaxBatch: 2, Workers: 2, Requests: 20, Duration: 10 * time.Second, Rounds: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rounds) != 3 {
		t.Fatalf("%d rounds, want 3", len(r.Rounds))
	}
	col := func(f func(Ratios) float64) []float64 {
		var v []float64
		for _, q := range r.Rounds {
			v = append(v, f(q))
		}
		return v
	}
	want := Ratios{
		SaturationVsRaw: median(col(func(q Ratios) float64 { return q.SaturationVsRaw })),
		AddedP50MS:      median(col(func(q Ratios) float64 { return q.AddedP50MS })),
		BatchingGain:    median(col(func(q Ratios) float64 { return q.BatchingGain })),
	}
	if r.Ratios != want {
		t.Errorf("ratios %+v, want the rounds' medians %+v", r.Ratios, want)
	}
	if got := r.Saturation.Throughput / r.Raw.Throughput; got != r.Ratios.SaturationVsRaw {
		t.Errorf("reports from a round with saturation ratio %v, want the median %v", got, r.Ratios.SaturationVsRaw)
	}
	if r.Raw.Items != 20 || r.LowLoad.Requests != 20 || r.Saturation.Requests != 20 {
		t.Errorf("a round's runs: raw %d items, 1 client %d and saturation %d requests; want 20 each",
			r.Raw.Items, r.LowLoad.Requests, r.Saturation.Requests)
	}
	// After the warm-up (5 singles, 3 batches) the raw runs go batched,
	// serial (round 1), serial, batched (round 2, backwards), batched,
	// serial (round 3): four stretches, where running forwards only gives
	// six. The serial run calls {0}…{4}, the batched one {0 2} {1 3} {4}.
	var order []string
	for _, b := range batches()[8:] {
		kind := "serial"
		switch {
		case len(b) > 1:
			kind = "batched"
		case b[0] == 4 && len(order) > 0:
			kind = order[len(order)-1]
		}
		if len(order) == 0 || order[len(order)-1] != kind {
			order = append(order, kind)
		}
	}
	if want := []string{"batched", "serial", "batched", "serial"}; fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("raw runs in the order %v, want %v", order, want)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		v      []float64
		median float64
		index  int
	}{
		{[]float64{3}, 3, 0},
		{[]float64{0.9, 0.8, 0.95}, 0.9, 0},
		{[]float64{2, 1, 4, 3}, 2.5, 0},
		{[]float64{5, 5, 1}, 5, 0},
	} {
		if got := median(tc.v); got != tc.median {
			t.Errorf("median(%v) = %v, want %v", tc.v, got, tc.median)
		}
		if got := medianIndex(tc.v); got != tc.index {
			t.Errorf("medianIndex(%v) = %v, want %v", tc.v, got, tc.index)
		}
	}
}
