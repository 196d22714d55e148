package bench

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/medgr2/medgr2/server/api"
)

func TestRunModes(t *testing.T) {
	var n atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%10 == 0 {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		time.Sleep(time.Millisecond)
	}))
	defer ts.Close()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"closed", Config{URL: ts.URL, Clients: 4, Requests: 100}},
		{"open", Config{URL: ts.URL, Rate: 500, Requests: 100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n.Store(0)
			rep, err := Run(context.Background(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Requests != 100 || rep.Errors != 10 || rep.ErrorsBy["429"] != 10 || rep.Items != 90 {
				t.Fatalf("report %+v", rep)
			}
			if !(rep.P50MS >= 1 && rep.P50MS <= rep.P90MS && rep.P90MS <= rep.P99MS && rep.P99MS <= rep.MaxMS) || rep.Throughput <= 0 {
				t.Fatalf("latencies %+v", rep)
			}
			if rep.Mode != tc.name {
				t.Fatalf("mode %q", rep.Mode)
			}
		})
	}
}

func TestRunBoundedByDuration(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(20 * time.Millisecond) }))
	defer ts.Close()
	rep, err := Run(context.Background(), Config{URL: ts.URL, Requests: 1000, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests > 10 || rep.ElapsedS > 1 {
		t.Fatalf("run not bounded by duration: %+v", rep)
	}
}

func TestRunRejectsBadTargets(t *testing.T) {
	tests := []struct {
		url  string
		want error
	}{
		{"http://example.com:80", ErrNotLoopback},
		{"http://10.0.0.1:8080", ErrNotLoopback},
		{"::bad", nil},
	}
	for _, tc := range tests {
		_, err := Run(context.Background(), Config{URL: tc.url})
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: err %v", tc.url, err)
		}
	}
}

func TestDirect(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	var seen []int
	batches := [][]int{{0, 1, 2}, {3}, {4, 5}}
	rep := Direct(context.Background(), DirectConfig{Name: "raw", Batches: batches, Callers: 3, Items: 12, Duration: time.Minute},
		func(ctx context.Context, b []int) error {
			mu.Lock()
			defer mu.Unlock()
			calls++
			seen = append(seen, b...)
			if len(b) == 1 && slices.Index(seen, 3) != len(seen)-1 {
				return errors.New("boom") // the second call of [3]
			}
			return nil
		})
	// 12 items are 3+1+2+3+1+2: six calls, the second [3] fails.
	if calls != 6 || rep.Items != 11 || rep.Errors != 1 || rep.ErrorsBy["model"] != 1 || rep.BatchSize != 3 || rep.Clients != 3 || rep.Mode != "direct" {
		t.Fatalf("calls %d report %+v", calls, rep)
	}
	slices.Sort(seen)
	if want := []int{0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5}; !slices.Equal(seen, want) {
		t.Fatalf("items called %v, want every batch twice: %v", seen, want)
	}
	if rep.CPU.Cores < 1 {
		t.Fatalf("cpu %+v", rep.CPU)
	}
}

func TestSinglesAndChunks(t *testing.T) {
	if got := Singles(3); !reflect.DeepEqual(got, [][]int{{0}, {1}, {2}}) {
		t.Errorf("Singles(3) = %v", got)
	}
	tests := []struct {
		groups [][]int
		size   int
		want   [][]int
	}{
		{[][]int{{0, 1, 2, 3, 4}}, 2, [][]int{{0, 1}, {2, 3}, {4}}},
		{[][]int{{0, 2}, {1, 3, 5}, {}}, 2, [][]int{{0, 2}, {1, 3}, {5}}},
		{[][]int{{7, 8}}, 0, [][]int{{7}, {8}}},
	}
	for _, tc := range tests {
		if got := Chunks(tc.groups, tc.size); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Chunks(%v, %d) = %v, want %v", tc.groups, tc.size, got, tc.want)
		}
	}
}

// TestRunSendsBodiesInTurn checks that request i sends Bodies[i%len] and
// that the server's timing fields are averaged into the stages.
func TestRunSendsBodiesInTurn(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got[string(b)]++
		mu.Unlock()
		queue := 0.1
		if string(b) == "b" {
			queue = 0.4
		}
		time.Sleep(2 * time.Millisecond)
		json.NewEncoder(w).Encode(api.VQAResponse{Timing: api.Timing{DecodeMS: 0.15, PreprocessMS: 0.05, QueueMS: queue, ModelMS: 0.5, VisionMS: 0.2,
			TotalMS: 1 + queue, BatchSize: 2}})
	}))
	defer ts.Close()
	rep, err := Run(context.Background(), Config{URL: ts.URL, Clients: 3, Requests: 30, Bodies: [][]byte{[]byte("a"), []byte("b"), []byte("c")}})
	if err != nil {
		t.Fatal(err)
	}
	if got["a"] != 10 || got["b"] != 10 || got["c"] != 10 {
		t.Fatalf("bodies sent %v, want 10 of each", got)
	}
	st := rep.Stages
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if st.Responses != 30 || !near(st.DecodeMS, 0.15) || !near(st.PreprocessMS, 0.05) || !near(st.QueueMS, 0.2) ||
		!near(st.ModelMS, 0.5) || !near(st.VisionMS, 0.2) || !near(st.ServerMS, 1.2) || !near(st.ServerOtherMS, 0.3) || st.BatchSize != 2 || st.TransportMS <= 0 || st.TransportMS > rep.MeanMS {
		t.Fatalf("stages %+v (mean latency %.2f ms)", st, rep.MeanMS)
	}
	if !(rep.P50MS <= rep.P95MS && rep.P95MS <= rep.P99MS) {
		t.Fatalf("quantiles %+v", rep)
	}
}

// TestRunStagesWithoutTiming checks that answers without a timing field
// (or not JSON) give no stage breakdown rather than zeros averaged in.
func TestRunStagesWithoutTiming(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("not json")) }))
	defer ts.Close()
	rep, err := Run(context.Background(), Config{URL: ts.URL, Requests: 5})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Items != 5 || rep.Stages != (Stages{}) {
		t.Fatalf("report %+v", rep)
	}
}

// TestRunDrainsInFlight checks that requests in flight at the deadline are
// waited for and counted as answered, not as errors: the fake target takes
// far longer than the run's duration.
func TestRunDrainsInFlight(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(200 * time.Millisecond) }))
	defer ts.Close()
	tests := []struct {
		name string
		cfg  Config
		n    int // most requests that can be in flight at the deadline
	}{
		{"closed", Config{URL: ts.URL, Clients: 3, Requests: 100, Duration: 50 * time.Millisecond}, 3},
		// 100/s for 55 ms starts about 6; a loaded machine's timer may let
		// one more through.
		{"open", Config{URL: ts.URL, Rate: 100, Requests: 100, Duration: 55 * time.Millisecond}, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Run(context.Background(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Errors != 0 || rep.Items != rep.Requests || rep.Drained != rep.Requests || rep.Requests < 1 || rep.Requests > tc.n {
				t.Fatalf("report %+v, want every request (at most %d) drained and answered", rep, tc.n)
			}
			if rep.P50MS < 200 {
				t.Fatalf("p50 %.1f ms: the drained requests were not waited for", rep.P50MS)
			}
		})
	}
}

func TestDirectDrainsInFlight(t *testing.T) {
	var calls atomic.Int64
	rep := Direct(context.Background(), DirectConfig{Batches: [][]int{{0, 1, 2, 3}}, Callers: 2, Items: 400, Duration: 20 * time.Millisecond},
		func(ctx context.Context, b []int) error {
			calls.Add(1)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
				return nil
			}
		})
	if calls.Load() != 2 || rep.Errors != 0 || rep.Items != 8 || rep.Drained != 2 || rep.Name != "direct" {
		t.Fatalf("calls %d report %+v", calls.Load(), rep)
	}
}

func TestRunCancelledByCaller(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	rep, err := Run(ctx, Config{URL: ts.URL, Clients: 2, Requests: 10})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ElapsedS > 2 || rep.ErrorsBy["cancelled"] != rep.Requests {
		t.Fatalf("report %+v, want every request cancelled promptly", rep)
	}
}
