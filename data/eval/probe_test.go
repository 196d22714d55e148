package eval

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// plantedSet returns n vectors of dim noise features over classes
// classes (imbalanced: class 0 twice as frequent); when planted, feature
// 3 carries the class (class id × 2 plus small noise).
func plantedSet(n, dim, classes int, planted bool, seed uint64) ProbeSet {
	rng := rand.New(rand.NewPCG(seed, 11))
	s := ProbeSet{X: make([][]float32, n), Y: make([]int, n)}
	for i := range n {
		y := rng.IntN(classes + 1)
		if y == classes {
			y = 0
		}
		v := make([]float32, dim)
		for j := range v {
			v[j] = float32(rng.NormFloat64() * 5)
		}
		if planted {
			v[3] = float32(2*y) + float32(rng.NormFloat64()*0.1)
		}
		s.X[i], s.Y[i] = v, y
	}
	return s
}

func TestLinearProbeFindsPlantedFeature(t *testing.T) {
	tests := []struct {
		name    string
		classes int
	}{{"binary", 2}, {"three classes", 3}, {"five classes", 5}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			train := plantedSet(300, 20, tc.classes, true, 1)
			val := plantedSet(150, 20, tc.classes, true, 2)
			res, err := LinearProbe(context.Background(), train, val, ProbeConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Accuracy < 0.97 {
				t.Errorf("accuracy %.3f with a separable feature (majority %.3f)", res.Accuracy, res.Majority)
			}
			if res.Classes != tc.classes || res.Train != 300 || res.Val != 150 || res.Dim != 20 {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestLinearProbeNoiseScoresNearMajority(t *testing.T) {
	train := plantedSet(300, 20, 3, false, 3)
	val := plantedSet(300, 20, 3, false, 4)
	res, err := LinearProbe(context.Background(), train, val, ProbeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(res.Accuracy-res.Majority) > 0.1 {
		t.Errorf("noise features: accuracy %.3f, majority %.3f", res.Accuracy, res.Majority)
	}
	if res.Majority < 0.4 || res.Majority > 0.6 {
		t.Errorf("majority %.3f, want about 0.5 (class 0 is half the set)", res.Majority)
	}
}

// TestSoftmaxLossGradient checks the hand-written gradient against
// central finite differences.
func TestSoftmaxLossGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	const classes, dim = 3, 4
	x := make([][]float64, 7)
	y := make([]int, len(x))
	for i := range x {
		x[i] = make([]float64, dim)
		for j := range x[i] {
			x[i][j] = rng.NormFloat64()
		}
		y[i] = rng.IntN(classes)
	}
	w := make([]float64, classes*(dim+1))
	for i := range w {
		w[i] = rng.NormFloat64() * 0.5
	}
	grad := make([]float64, len(w))
	softmaxLoss(w, x, y, classes, 0.3, grad)
	scratch := make([]float64, len(w))
	const h = 1e-5
	for k := range w {
		orig := w[k]
		w[k] = orig + h
		up := softmaxLoss(w, x, y, classes, 0.3, scratch)
		w[k] = orig - h
		down := softmaxLoss(w, x, y, classes, 0.3, scratch)
		w[k] = orig
		if fd := (up - down) / (2 * h); math.Abs(fd-grad[k]) > 1e-6 {
			t.Errorf("weight %d: gradient %.8f, finite difference %.8f", k, grad[k], fd)
		}
	}
}

// TestLBFGSMinimisesQuadratic: the optimiser reaches the minimum of an
// ill-conditioned quadratic.
func TestLBFGSMinimisesQuadratic(t *testing.T) {
	scale := []float64{1, 10, 100, 0.1}
	target := []float64{3, -2, 0.5, 7}
	f := func(w, g []float64) float64 {
		var s float64
		for i := range w {
			d := w[i] - target[i]
			s += 0.5 * scale[i] * d * d
			g[i] = scale[i] * d
		}
		return s
	}
	w := lbfgs(f, make([]float64, 4), 100)
	for i := range w {
		if math.Abs(w[i]-target[i]) > 1e-4 {
			t.Errorf("w[%d] = %.6f, want %.6f", i, w[i], target[i])
		}
	}
}

func TestLinearProbeErrors(t *testing.T) {
	good := plantedSet(20, 4, 2, true, 1)
	oneClass := ProbeSet{X: [][]float32{{1}, {2}}, Y: []int{1, 1}}
	tests := []struct {
		name       string
		train, val ProbeSet
	}{
		{"empty train", ProbeSet{}, good},
		{"empty val", good, ProbeSet{}},
		{"labels short", ProbeSet{X: good.X, Y: good.Y[:3]}, good},
		{"ragged", good, ProbeSet{X: [][]float32{{1, 2}}, Y: []int{0}}},
		{"zero length", ProbeSet{X: [][]float32{{}, {}}, Y: []int{0, 1}}, ProbeSet{X: [][]float32{{}}, Y: []int{0}}},
		{"negative label", ProbeSet{X: good.X[:2], Y: []int{0, -1}}, good},
		{"one class", oneClass, ProbeSet{X: [][]float32{{1}}, Y: []int{0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := LinearProbe(context.Background(), tc.train, tc.val, ProbeConfig{}); !errors.Is(err, ErrProbe) {
				t.Errorf("err = %v, want ErrProbe", err)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := LinearProbe(ctx, good, good, ProbeConfig{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}
