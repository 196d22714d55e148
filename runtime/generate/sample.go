package generate

import (
	"math"
	"slices"
)

// pick chooses the next token from one row of logits according to the
// row's options, returning the token and its log-probability under
// softmax(logits / T).
func (r *row) pick(logits []float32) (int, float32) {
	t := r.temperature()
	if t == 0 {
		tok := r.argmaxAllowed(logits)
		return tok, float32(logSoftmaxAt(logits, tok, 1))
	}
	probs := r.scaledProbs(logits, t)
	tok := r.draw(probs)
	return tok, float32(logSoftmaxAt(logits, tok, t))
}

// temperature is the temperature of the row's next pick: the override
// for the last generated token if it has one, else Temperature.
func (r *row) temperature() float64 {
	if n := len(r.res.Tokens); n > 0 {
		if t, ok := r.opts.TemperatureAfter[r.res.Tokens[n-1]]; ok {
			return float64(t)
		}
	}
	return float64(r.opts.Temperature)
}

// argmaxAllowed is argmax over the tokens the row may generate.
func (r *row) argmaxAllowed(logits []float32) int {
	if len(r.opts.SuppressTokens) == 0 {
		return argmax(logits)
	}
	best := -1
	for i, v := range logits {
		if (best < 0 || v > logits[best]) && !slices.Contains(r.opts.SuppressTokens, i) {
			best = i
		}
	}
	if best < 0 {
		return argmax(logits) // everything suppressed: fall back rather than fail
	}
	return best
}

// scaledProbs fills the row's buffer with softmax(logits/t) over the tokens
// not suppressed, then zeroes the tokens that top-k and top-p exclude
// (without renormalising: draw scales by the remaining mass).
func (r *row) scaledProbs(logits []float32, t float64) []float64 {
	n := len(logits)
	if cap(r.probs) < n {
		r.probs = make([]float64, n)
		r.order = make([]int, n)
	}
	p := r.probs[:n]
	mx := float64(logits[argmax(logits)])
	var sum float64
	for i, v := range logits {
		e := math.Exp((float64(v) - mx) / t)
		p[i] = e
		sum += e
	}
	if kept := sum - suppressedMass(p, r.opts.SuppressTokens); kept > 0 { // all suppressed: ignore it
		for _, tok := range r.opts.SuppressTokens {
			if tok < n {
				p[tok] = 0
			}
		}
		sum = kept
	}
	for i := range p {
		p[i] /= sum
	}
	k, topP := r.opts.TopK, float64(r.opts.TopP)
	if (k == 0 || k >= n) && (topP == 0 || topP >= 1) {
		return p
	}
	order := r.order[:n]
	for i := range order {
		order[i] = i
	}
	// Stable sort by descending probability, ties by token id, so the
	// kept set is deterministic.
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case p[a] > p[b]:
			return -1
		case p[a] < p[b]:
			return 1
		}
		return 0
	})
	keep := n
	if k > 0 && k < keep {
		keep = k
	}
	if topP > 0 && topP < 1 {
		var cum float64
		for i := 0; i < keep; i++ {
			cum += p[order[i]]
			if cum >= topP {
				keep = i + 1
				break
			}
		}
	}
	for _, tok := range order[keep:] {
		p[tok] = 0
	}
	return p
}

// suppressedMass sums p over the distinct suppressed tokens.
func suppressedMass(p []float64, suppress []int) float64 {
	var m float64
	for i, tok := range suppress {
		if tok < len(p) && !slices.Contains(suppress[:i], tok) {
			m += p[tok]
		}
	}
	return m
}

// draw samples an index from unnormalised non-negative weights.
func (r *row) draw(w []float64) int {
	var total float64
	for _, v := range w {
		total += v
	}
	u := r.rng.Float64() * total
	last := 0
	for i, v := range w {
		if v == 0 {
			continue
		}
		last = i
		u -= v
		if u < 0 {
			return i
		}
	}
	return last // rounding left u ≥ 0: the last kept token
}

// argmax returns the index of the largest value (the first on ties).
func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// logSoftmaxAt returns log softmax(x/t)[i], computed stably in float64.
func logSoftmaxAt(x []float32, i int, t float64) float64 {
	mx := float64(x[argmax(x)])
	var sum float64
	for _, v := range x {
		sum += math.Exp((float64(v) - mx) / t)
	}
	return (float64(x[i])-mx)/t - math.Log(sum)
}

// OptionProbs returns the probability of each option token given one row of
// next-token logits, renormalised over the options alone (a softmax over
// logits[tokens[j]]). Tokens must be valid indices into logits.
func OptionProbs(logits []float32, tokens []int) []float64 {
	out := make([]float64, len(tokens))
	if len(tokens) == 0 {
		return out
	}
	mx := math.Inf(-1)
	for _, t := range tokens {
		mx = math.Max(mx, float64(logits[t]))
	}
	var sum float64
	for j, t := range tokens {
		out[j] = math.Exp(float64(logits[t]) - mx)
		sum += out[j]
	}
	for j := range out {
		out[j] /= sum
	}
	return out
}
