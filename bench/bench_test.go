package bench

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
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
	calls := 0
	rep := Direct(context.Background(), "raw", 8, 80, time.Minute, func(ctx context.Context, n int) error {
		calls++
		if calls == 3 {
			return errors.New("boom")
		}
		return nil
	})
	if calls != 10 || rep.Items != 72 || rep.Errors != 1 || rep.BatchSize != 8 {
		t.Fatalf("calls %d report %+v", calls, rep)
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
	calls := 0
	rep := Direct(context.Background(), "raw", 4, 400, 20*time.Millisecond, func(ctx context.Context, n int) error {
		calls++
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
			return nil
		}
	})
	if calls != 1 || rep.Errors != 0 || rep.Items != 4 || rep.Drained != 1 {
		t.Fatalf("calls %d report %+v", calls, rep)
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
