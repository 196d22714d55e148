package server

import (
	"testing"
	"time"
)

func TestRetryAfterSeconds(t *testing.T) {
	tests := []struct {
		name    string
		waiting int64
		rate    float64
		want    int
	}{
		{"idle and fast", 0, 100, 1},
		{"no throughput yet", 0, 0, 10},
		{"queue at 10 items/s", 99, 10, 10},
		{"queue at 0.5 items/s", 5, 0.5, 12},
		{"stalled with a queue", 50, 0, 120},
		{"huge queue", 1_000_000, 1000, 120},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryAfterSeconds(tc.waiting, tc.rate); got != tc.want {
				t.Fatalf("retryAfterSeconds(%d, %g) = %d, want %d", tc.waiting, tc.rate, got, tc.want)
			}
		})
	}
}

func TestThroughputWindow(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	tp := &throughput{now: func() time.Time { return now }}
	if r := tp.rate(); r != 0 {
		t.Fatalf("empty meter: %g", r)
	}
	tp.add(30)
	now = now.Add(time.Second)
	tp.add(70)
	if r := tp.rate(); r != 10 {
		t.Fatalf("100 items in the window: rate %g, want 10", r)
	}
	now = now.Add(throughputWindow * time.Second)
	if r := tp.rate(); r != 0 {
		t.Fatalf("after the window: rate %g, want 0", r)
	}
	tp.add(5) // reuses a stale bucket
	if r := tp.rate(); r != 0.5 {
		t.Fatalf("stale bucket not reset: rate %g, want 0.5", r)
	}
}
