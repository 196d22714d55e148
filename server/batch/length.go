package batch

import (
	"math"
	"sync/atomic"
)

// LengthStep is the default ratio of LengthKey's buckets: prompts that
// share a key differ in length by less than 25%, so a batch of them is at
// most a fifth padding.
const LengthStep = 1.25

// LengthKey returns the padding key of a prompt of tokens tokens, for
// Submit: lengths are bucketed geometrically with ratio step (LengthStep
// when step ≤ 1), so that requests sharing a key pad each other little
// while a key still gathers enough requests to batch. Lengths below 1
// share the key of length 1.
func LengthKey(tokens int, step float64) int {
	if step <= 1 {
		step = LengthStep
	}
	return int(math.Log(float64(max(tokens, 1))) / math.Log(step))
}

// PaddingMeter accumulates how much of the batches' token slots is
// padding, for batches whose rows are padded to the longest. It is safe
// for concurrent use; the zero value is ready.
type PaddingMeter struct {
	padded atomic.Int64 // padding tokens over all observed batches
	total  atomic.Int64 // token slots (rows × longest) over all batches
}

// Padding returns the padding and the total token slots of a batch whose
// rows, of the given lengths in tokens, are padded to the longest.
func Padding(lengths []int) (padded, total int) {
	longest, sum := 0, 0
	for _, n := range lengths {
		longest = max(longest, n)
		sum += n
	}
	total = longest * len(lengths)
	return total - sum, total
}

// Observe records one batch given its rows' lengths in tokens; it returns
// the batch's padding and total token slots (see Padding).
func (p *PaddingMeter) Observe(lengths []int) (padded, total int) {
	padded, total = Padding(lengths)
	p.padded.Add(int64(padded))
	p.total.Add(int64(total))
	return padded, total
}

// Share returns padded tokens / total token slots over every observed
// batch, or 0 before any.
func (p *PaddingMeter) Share() float64 {
	t := p.total.Load()
	if t == 0 {
		return 0
	}
	return float64(p.padded.Load()) / float64(t)
}
