package batch

import (
	"math"
	"testing"
)

func TestLengthKey(t *testing.T) {
	tests := []struct {
		a, b int
		step float64
		same bool
	}{
		{110, 130, 0, true},      // both in [1.25^21, 1.25^22)
		{100, 130, 0, false},     // beyond 25%
		{68, 305, 0, false},      // the serving mix's extremes
		{300, 330, 1.5, true},    // a wider step
		{0, 1, 0, true},          // lengths below 1 share length 1's key
		{-5, 1, 1.25, true},      // negative too
		{1000, 1100, 1.1, false}, // a narrow step splits them
	}
	for _, tt := range tests {
		if got := LengthKey(tt.a, tt.step) == LengthKey(tt.b, tt.step); got != tt.same {
			t.Errorf("LengthKey(%d) == LengthKey(%d) with step %v: %v, want %v", tt.a, tt.b, tt.step, got, tt.same)
		}
	}
	// Keys never decrease with length, and a key spans less than a step.
	for n := 1; n < 5000; n++ {
		if LengthKey(n+1, 0) < LengthKey(n, 0) {
			t.Fatalf("LengthKey(%d) < LengthKey(%d)", n+1, n)
		}
	}
	first := map[int]int{}
	for n := 1; n < 5000; n++ {
		k := LengthKey(n, 0)
		if _, ok := first[k]; !ok {
			first[k] = n
		}
		if float64(n) >= float64(first[k])*LengthStep {
			t.Fatalf("key %d spans %d…%d, a ratio of %v or more", k, first[k], n, LengthStep)
		}
	}
}

func TestPaddingMeter(t *testing.T) {
	var p PaddingMeter
	if p.Share() != 0 {
		t.Fatalf("empty meter share %v", p.Share())
	}
	if pad, tot := p.Observe([]int{10, 6, 4}); pad != 10 || tot != 30 {
		t.Fatalf("Observe = %d/%d, want 10/30", pad, tot)
	}
	if pad, tot := p.Observe([]int{5, 5}); pad != 0 || tot != 10 {
		t.Fatalf("Observe = %d/%d, want 0/10", pad, tot)
	}
	if got := p.Share(); math.Abs(got-0.25) > 1e-12 {
		t.Fatalf("Share = %v, want 0.25", got)
	}
}
