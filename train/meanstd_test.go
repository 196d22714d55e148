package train_test

import (
	"math"
	"testing"

	"github.com/medgr2/medgr2/train"
)

func TestMeanStd(t *testing.T) {
	cases := []struct {
		name     string
		in       []float64
		mean, sd float64
	}{
		{"empty", nil, 0, 0},
		{"single", []float64{3.5}, 3.5, 0},
		{"constant", []float64{2, 2, 2}, 2, 0},
		{"two", []float64{1, 3}, 2, math.Sqrt2},
		{"sample sd uses n-1", []float64{2, 4, 4, 4, 5, 5, 7, 9}, 5, math.Sqrt(32.0 / 7)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mean, sd := train.MeanStd(c.in)
			if math.Abs(mean-c.mean) > 1e-12 || math.Abs(sd-c.sd) > 1e-12 {
				t.Fatalf("MeanStd(%v) = %g, %g; want %g, %g", c.in, mean, sd, c.mean, c.sd)
			}
		})
	}
}
