package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrProbe reports input LinearProbe cannot fit: empty or ragged feature
// sets, negative labels, fewer than two classes.
var ErrProbe = errors.New("eval: bad probe input")

// ProbeSet is labelled feature vectors: X[i] has label Y[i] (a class id,
// 0 … classes−1). Every vector has the same length.
type ProbeSet struct {
	X [][]float32
	Y []int
}

// ProbeL2Grid is the L2 strengths LinearProbe chooses from when
// ProbeConfig.L2 is 0 (in units of the mean cross-entropy, on standardised
// features).
var ProbeL2Grid = []float64{1e-3, 1e-2, 1e-1, 1}

// ProbeConfig sets LinearProbe.
type ProbeConfig struct {
	// L2 is the weight-decay strength (bias exempt); 0 chooses it from
	// ProbeL2Grid by 3-fold cross-validation on the training set alone.
	L2 float64
	// MaxIter bounds the L-BFGS iterations of one fit; default 200.
	MaxIter int
}

// ProbeResult is a linear probe's score on the validation set.
type ProbeResult struct {
	Accuracy float64 // share of validation vectors classified right
	Majority float64 // validation accuracy of always answering the training set's most frequent class
	L2       float64 // the L2 strength used
	Classes  int     // classes in the training set (max label + 1)
	Train    int     // training vectors
	Val      int     // validation vectors
	Dim      int     // feature length
}

// LinearProbe fits multinomial logistic regression (softmax over
// classes, L2 on the weights, features standardised with the training
// set's mean and standard deviation) to train by L-BFGS, and scores it on
// val. It reports how much linearly readable label information the
// features carry, against the majority-class baseline. Errors wrap
// ErrProbe; a done ctx stops between fits.
func LinearProbe(ctx context.Context, train, val ProbeSet, cfg ProbeConfig) (ProbeResult, error) {
	dim, classes, err := checkProbe(train, val)
	if err != nil {
		return ProbeResult{}, err
	}
	if cfg.MaxIter == 0 {
		cfg.MaxIter = 200
	}
	mean, std := standardiser(train.X, dim)
	tx, vx := standardise(train.X, mean, std), standardise(val.X, mean, std)
	res := ProbeResult{L2: cfg.L2, Classes: classes, Train: len(train.Y), Val: len(val.Y), Dim: dim}
	if res.L2 == 0 {
		if res.L2, err = chooseL2(ctx, tx, train.Y, classes, cfg.MaxIter); err != nil {
			return ProbeResult{}, err
		}
	}
	w := fitSoftmax(tx, train.Y, classes, res.L2, cfg.MaxIter)
	res.Accuracy = accuracyOf(w, vx, val.Y, classes)
	maj := majorityClass(train.Y, classes)
	for _, y := range val.Y {
		if y == maj {
			res.Majority++
		}
	}
	res.Majority /= float64(len(val.Y))
	return res, nil
}

func checkProbe(train, val ProbeSet) (dim, classes int, err error) {
	for _, s := range []struct {
		name string
		set  ProbeSet
	}{{"train", train}, {"val", val}} {
		if len(s.set.X) == 0 || len(s.set.X) != len(s.set.Y) {
			return 0, 0, fmt.Errorf("%w: %s set has %d vectors and %d labels", ErrProbe, s.name, len(s.set.X), len(s.set.Y))
		}
		if dim == 0 {
			dim = len(s.set.X[0])
		}
		for i, x := range s.set.X {
			if len(x) != dim || dim == 0 {
				return 0, 0, fmt.Errorf("%w: %s vector %d has length %d, want %d > 0", ErrProbe, s.name, i, len(x), dim)
			}
			if s.set.Y[i] < 0 {
				return 0, 0, fmt.Errorf("%w: %s label %d is %d", ErrProbe, s.name, i, s.set.Y[i])
			}
		}
	}
	seen := map[int]bool{}
	for _, y := range train.Y {
		seen[y] = true
		classes = max(classes, y+1)
	}
	if len(seen) < 2 {
		return 0, 0, fmt.Errorf("%w: the training set has %d class(es); a probe needs 2", ErrProbe, len(seen))
	}
	for _, y := range val.Y {
		classes = max(classes, y+1)
	}
	return dim, classes, nil
}

// standardiser returns the per-feature mean and standard deviation (1
// where a feature is constant).
func standardiser(x [][]float32, dim int) (mean, std []float64) {
	mean, std = make([]float64, dim), make([]float64, dim)
	for _, v := range x {
		for j, f := range v {
			mean[j] += float64(f)
		}
	}
	n := float64(len(x))
	for j := range mean {
		mean[j] /= n
	}
	for _, v := range x {
		for j, f := range v {
			d := float64(f) - mean[j]
			std[j] += d * d
		}
	}
	for j := range std {
		std[j] = math.Sqrt(std[j] / n)
		if std[j] < 1e-12 {
			std[j] = 1
		}
	}
	return mean, std
}

func standardise(x [][]float32, mean, std []float64) [][]float64 {
	out := make([][]float64, len(x))
	for i, v := range x {
		out[i] = make([]float64, len(v))
		for j, f := range v {
			out[i][j] = (float64(f) - mean[j]) / std[j]
		}
	}
	return out
}

// chooseL2 picks the grid strength with the best 3-fold cross-validated
// accuracy on the training set (ties: the stronger one).
func chooseL2(ctx context.Context, x [][]float64, y []int, classes, maxIter int) (float64, error) {
	const folds = 3
	best, bestAcc := ProbeL2Grid[len(ProbeL2Grid)-1], -1.0
	for k := len(ProbeL2Grid) - 1; k >= 0; k-- {
		l2 := ProbeL2Grid[k]
		var acc float64
		for f := range folds {
			if err := ctx.Err(); err != nil {
				return 0, fmt.Errorf("eval: probe: %w", err)
			}
			var fx, vx [][]float64
			var fy, vy []int
			for i := range x {
				if i%folds == f {
					vx, vy = append(vx, x[i]), append(vy, y[i])
				} else {
					fx, fy = append(fx, x[i]), append(fy, y[i])
				}
			}
			if len(vx) == 0 || len(fx) == 0 {
				continue
			}
			acc += accuracyOf(fitSoftmax(fx, fy, classes, l2, maxIter), vx, vy, classes) * float64(len(vy))
		}
		if acc > bestAcc+1e-9 {
			best, bestAcc = l2, acc
		}
	}
	return best, nil
}

func majorityClass(y []int, classes int) int {
	counts := make([]int, classes)
	for _, c := range y {
		counts[c]++
	}
	return slices.Index(counts, slices.Max(counts))
}

// Weights are laid out [classes][dim+1], the bias last.

// accuracyOf scores weights w on (x, y).
func accuracyOf(w []float64, x [][]float64, y []int, classes int) float64 {
	dim := len(w)/classes - 1
	right := 0
	logits := make([]float64, classes)
	for i, v := range x {
		scores(w, v, dim, logits)
		if argmax(logits) == y[i] {
			right++
		}
	}
	return float64(right) / float64(len(x))
}

func scores(w, v []float64, dim int, out []float64) {
	for c := range out {
		row := w[c*(dim+1) : (c+1)*(dim+1)]
		s := row[dim]
		for j, f := range v {
			s += row[j] * f
		}
		out[c] = s
	}
}

// softmaxLoss returns the mean cross-entropy plus l2/2·|W|² (biases
// exempt) and writes its gradient into grad.
func softmaxLoss(w []float64, x [][]float64, y []int, classes int, l2 float64, grad []float64) float64 {
	dim := len(w)/classes - 1
	clear(grad)
	p := make([]float64, classes)
	var loss float64
	n := float64(len(x))
	for i, v := range x {
		scores(w, v, dim, p)
		m := slices.Max(p)
		var z float64
		for c := range p {
			p[c] = math.Exp(p[c] - m)
			z += p[c]
		}
		loss -= math.Log(p[y[i]]/z) / n
		for c := range p {
			d := p[c] / z
			if c == y[i] {
				d--
			}
			d /= n
			row := grad[c*(dim+1) : (c+1)*(dim+1)]
			for j, f := range v {
				row[j] += d * f
			}
			row[dim] += d
		}
	}
	for c := range classes {
		for j := range dim {
			k := c*(dim+1) + j
			loss += 0.5 * l2 * w[k] * w[k]
			grad[k] += l2 * w[k]
		}
	}
	return loss
}

// fitSoftmax minimises softmaxLoss from zero weights by L-BFGS (memory 10)
// with a backtracking Armijo line search.
func fitSoftmax(x [][]float64, y []int, classes int, l2 float64, maxIter int) []float64 {
	n := classes * (len(x[0]) + 1)
	f := func(w, g []float64) float64 { return softmaxLoss(w, x, y, classes, l2, g) }
	return lbfgs(f, make([]float64, n), maxIter)
}

// lbfgs minimises f (which writes its gradient into its second argument)
// from w0 and returns the minimiser; it stops after maxIter iterations,
// when the gradient norm falls under 1e-6, or when no step decreases f.
func lbfgs(f func(w, g []float64) float64, w []float64, maxIter int) []float64 {
	const mem = 10
	n := len(w)
	g, gNew, wNew, dir := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	var ss, ys [][]float64
	var rhos []float64
	fx := f(w, g)
	alpha := make([]float64, mem)
	for range maxIter {
		if math.Sqrt(dot(g, g)) < 1e-6 {
			break
		}
		// Two-loop recursion: dir = −H·g.
		for i := range dir {
			dir[i] = -g[i]
		}
		for k := len(ss) - 1; k >= 0; k-- {
			alpha[k] = rhos[k] * dot(ss[k], dir)
			axpy(-alpha[k], ys[k], dir)
		}
		if k := len(ss) - 1; k >= 0 {
			gamma := dot(ss[k], ys[k]) / dot(ys[k], ys[k])
			for i := range dir {
				dir[i] *= gamma
			}
		}
		for k := range ss {
			beta := rhos[k] * dot(ys[k], dir)
			axpy(alpha[k]-beta, ss[k], dir)
		}
		slope := dot(g, dir)
		if slope >= 0 { // not a descent direction: restart from steepest descent
			ss, ys, rhos = nil, nil, nil
			for i := range dir {
				dir[i] = -g[i]
			}
			slope = dot(g, dir)
		}
		step := 1.0
		if len(ss) == 0 {
			step = 1 / math.Max(1, math.Sqrt(-slope))
		}
		var fNew float64
		ok := false
		for range 40 {
			for i := range w {
				wNew[i] = w[i] + step*dir[i]
			}
			if fNew = f(wNew, gNew); fNew <= fx+1e-4*step*slope {
				ok = true
				break
			}
			step /= 2
		}
		if !ok {
			break
		}
		s, yv := make([]float64, n), make([]float64, n)
		for i := range w {
			s[i], yv[i] = wNew[i]-w[i], gNew[i]-g[i]
		}
		if sy := dot(s, yv); sy > 1e-12 {
			ss, ys, rhos = append(ss, s), append(ys, yv), append(rhos, 1/sy)
			if len(ss) > mem {
				ss, ys, rhos = ss[1:], ys[1:], rhos[1:]
			}
		}
		copy(w, wNew)
		copy(g, gNew)
		fx = fNew
	}
	return w
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func axpy(a float64, x, y []float64) {
	for i := range x {
		y[i] += a * x[i]
	}
}
