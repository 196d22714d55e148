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
