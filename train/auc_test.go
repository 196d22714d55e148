package train

import (
	"math"
	"testing"
)

// TestAUC checks the AUC on separated, reversed, tied and empty scores.
func TestAUC(t *testing.T) {
	cases := []struct {
		name     string
		pos, neg []float64
		want     float64
	}{
		{"separated", []float64{3, 4}, []float64{1, 2}, 1},
		{"reversed", []float64{1}, []float64{2, 3}, 0},
		{"ties", []float64{1, 1}, []float64{1}, 0.5},
		{"mixed", []float64{1, 3}, []float64{2}, 0.5},
		{"quarter", []float64{2}, []float64{1, 3, 4, 5}, 0.25},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := AUC(tc.pos, tc.neg); got != tc.want {
				t.Fatalf("AUC = %g, want %g", got, tc.want)
			}
		})
	}
	if got := AUC(nil, []float64{1}); !math.IsNaN(got) {
		t.Fatalf("AUC without positives = %g, want NaN", got)
	}
}
