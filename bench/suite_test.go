package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSuite returns a loopback target and a direct function that count
// what they are asked for.
func fakeSuite(t *testing.T, directErr func(call int) error) (url string, direct func(context.Context, int) error, batches func() []int) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(time.Millisecond) }))
	t.Cleanup(ts.Close)
	var mu sync.Mutex
	var sizes []int
	direct = func(ctx context.Context, n int) error {
		mu.Lock()
		sizes = append(sizes, n)
		call := len(sizes)
		mu.Unlock()
		time.Sleep(time.Duration(n) * 100 * time.Microsecond)
		return directErr(call)
	}
	return ts.URL, direct, func() []int { mu.Lock(); defer mu.Unlock(); return append([]int(nil), sizes...) }
}

func TestRunSuiteNamedResults(t *testing.T) {
	url, direct, batches := fakeSuite(t, func(int) error { return nil })
	r, err := RunSuite(context.Background(), SuiteConfig{Direct: direct, URL: url, MaxBatch: 4, Requests: 40, Duration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rep             Report
		name, mode      string
		clients, batch  int
		requests, items int
	}{
		{r.Raw, "raw", "direct", 0, 4, 10, 40},
		{r.RawSerial, "raw serial", "direct", 0, 1, 40, 40},
		{r.LowLoad, "server low load", "closed", 1, 0, 40, 40},
		{r.Clients32, "server 32 clients", "closed", 32, 0, 40, 40},
		{r.Saturation, "server saturation", "closed", 8, 0, 40, 40},
	}
	for _, tc := range tests {
		got := tc.rep
		if got.Name != tc.name || got.Mode != tc.mode || got.Clients != tc.clients || got.BatchSize != tc.batch ||
			got.Requests != tc.requests || got.Items != tc.items || got.Errors != 0 {
			t.Errorf("%s: %+v", tc.name, got)
		}
	}
	want := Ratios{
		SaturationVsRaw: r.Saturation.Throughput / r.Raw.Throughput,
		AddedP50MS:      r.LowLoad.P50MS - r.RawSerial.P50MS,
		BatchingGain:    r.Clients32.Throughput / r.RawSerial.Throughput,
	}
	if r.Ratios != want {
		t.Errorf("ratios %+v, want %+v", r.Ratios, want)
	}
	if b := batches(); len(b) != 1+10+40 || b[0] != 1 || b[1] != 4 || b[len(b)-1] != 1 {
		t.Errorf("direct batches %v: want a warm-up item, 10 batches of 4, 40 of 1", b)
	}
	if got := r.Reports(); len(got) != 5 || got[0].Name != "raw" || got[4].Name != "server saturation" {
		t.Errorf("Reports() = %+v", got)
	}
	var buf bytes.Buffer
	if err := r.Ratios.WriteSummary(&buf); err != nil || strings.Count(buf.String(), "goal") != 3 {
		t.Errorf("summary %q, %v", buf.String(), err)
	}
}

// TestRunSuiteFailedBaseline checks that a baseline that answers nothing
// gives zero ratios that still encode as JSON, not NaN or Inf.
func TestRunSuiteFailedBaseline(t *testing.T) {
	url, direct, _ := fakeSuite(t, func(call int) error {
		if call > 1 {
			return errors.New("boom")
		}
		return nil
	})
	r, err := RunSuite(context.Background(), SuiteConfig{Direct: direct, URL: url, MaxBatch: 2, Requests: 8})
	if err != nil {
		t.Fatal(err)
	}
	if r.Raw.Errors != 4 || r.Ratios.SaturationVsRaw != 0 || r.Ratios.BatchingGain != 0 {
		t.Fatalf("result %+v", r)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Fatal(err)
	}
}

func TestRunSuiteErrors(t *testing.T) {
	boom := errors.New("boom")
	url, ok, _ := fakeSuite(t, func(int) error { return nil })
	_, failing, _ := fakeSuite(t, func(int) error { return boom })
	tests := []struct {
		name string
		cfg  SuiteConfig
		want error
	}{
		{"no baseline", SuiteConfig{URL: url}, ErrNoBaseline},
		{"warm-up fails", SuiteConfig{Direct: failing, URL: url}, boom},
		{"remote server", SuiteConfig{Direct: ok, URL: "http://192.0.2.1:8080", Requests: 2}, ErrNotLoopback},
	}
	for _, tc := range tests {
		if _, err := RunSuite(context.Background(), tc.cfg); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
}
