package graph

import (
	"fmt"
	"sort"
)

// broadcastShapes returns the numpy-broadcast shape of a and b. A fixed
// size other than 1 wins over a symbolic or unknown dim (the builder assumes
// they agree, as ONNX Runtime checks at run time); two different symbols
// give an unknown dim; two different fixed sizes (neither 1) are an error.
func broadcastShapes(a, b Shape) (Shape, error) {
	n := max(len(a), len(b))
	outShape := make(Shape, n)
	for i := range n {
		da, db := D(1), D(1)
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		d, err := broadcastDim(da, db)
		if err != nil {
			return nil, fmt.Errorf("%w: cannot broadcast %v with %v (axis %d)", ErrShape, a, b, i)
		}
		outShape[i] = d
	}
	return outShape, nil
}

func broadcastDim(a, b Dim) (Dim, error) {
	switch {
	case a == b:
		return a, nil
	case a.Size == 1:
		return b, nil
	case b.Size == 1:
		return a, nil
	case a.Fixed() && b.Fixed():
		return Dim{}, ErrShape
	case a.Fixed():
		return a, nil
	case b.Fixed():
		return b, nil
	case a.Param == "":
		return b, nil
	case b.Param == "":
		return a, nil
	}
	return Unknown, nil
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(axis int64, rank int) (int, error) {
	a := axis
	if a < 0 {
		a += int64(rank)
	}
	if a < 0 || a >= int64(rank) {
		return 0, fmt.Errorf("%w: axis %d out of range for rank %d", ErrInvalidArg, axis, rank)
	}
	return int(a), nil
}

// normAxes normalises, sorts and de-duplicates axes.
func normAxes(axes []int64, rank int) ([]int, error) {
	seen := map[int]bool{}
	out := make([]int, 0, len(axes))
	for _, ax := range axes {
		a, err := normAxis(ax, rank)
		if err != nil {
			return nil, err
		}
		if seen[a] {
			return nil, fmt.Errorf("%w: axis %d repeated", ErrInvalidArg, ax)
		}
		seen[a] = true
		out = append(out, a)
	}
	sort.Ints(out)
	return out, nil
}

// symProduct is a product of fixed sizes and symbols, used to infer the -1
// of a Reshape when the input has symbolic dims.
type symProduct struct {
	num     int64
	syms    map[string]int
	unknown bool
}

func newSymProduct() *symProduct { return &symProduct{num: 1, syms: map[string]int{}} }

func (p *symProduct) mul(d Dim) {
	switch {
	case d.Fixed():
		p.num *= d.Size
	case d.Param != "":
		p.syms[d.Param]++
	default:
		p.unknown = true
	}
}

// reshapeShape infers the output shape of Reshape(x, target) with ONNX
// semantics: 0 copies the input dim at the same index, -1 is inferred.
func reshapeShape(in Shape, target []int64) (Shape, error) {
	outShape := make(Shape, len(target))
	infer := -1
	for i, t := range target {
		switch {
		case t == 0:
			if i >= len(in) {
				return nil, fmt.Errorf("%w: 0 at index %d copies past input rank %d", ErrInvalidArg, i, len(in))
			}
			outShape[i] = in[i]
		case t == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("%w: more than one -1 in reshape target %v", ErrInvalidArg, target)
			}
			infer = i
		case t < -1:
			return nil, fmt.Errorf("%w: reshape target %v", ErrInvalidArg, target)
		default:
			outShape[i] = D(t)
		}
	}
	numer, denom := newSymProduct(), newSymProduct()
	for _, d := range in {
		numer.mul(d)
	}
	for i, d := range outShape {
		if i != infer {
			denom.mul(d)
		}
	}
	if infer < 0 {
		return outShape, checkReshapeCount(in, outShape, numer, denom)
	}
	outShape[infer] = inferDim(numer, denom)
	if outShape[infer].Fixed() && (denom.num == 0 || numer.num%max(denom.num, 1) != 0) {
		return nil, fmt.Errorf("%w: cannot reshape %v to %v", ErrShape, in, target)
	}
	return outShape, nil
}

func checkReshapeCount(in, outShape Shape, numer, denom *symProduct) error {
	if numer.unknown || denom.unknown || !sameSyms(numer.syms, denom.syms) {
		return nil
	}
	if numer.num != denom.num {
		return fmt.Errorf("%w: cannot reshape %v to %v", ErrShape, in, outShape)
	}
	return nil
}

// inferDim divides numer by denom when the result is a fixed size or a
// single symbol; otherwise the dim is unknown.
func inferDim(numer, denom *symProduct) Dim {
	if numer.unknown || denom.unknown || denom.num == 0 {
		return Unknown
	}
	rest := map[string]int{}
	for s, c := range numer.syms {
		rest[s] = c
	}
	for s, c := range denom.syms {
		rest[s] -= c
		if rest[s] < 0 {
			return Unknown
		}
		if rest[s] == 0 {
			delete(rest, s)
		}
	}
	switch {
	case len(rest) == 0:
		return D(numer.num / denom.num)
	case len(rest) == 1 && numer.num == denom.num:
		for s, c := range rest {
			if c == 1 {
				return Sym(s)
			}
		}
	}
	return Unknown
}

func sameSyms(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// sliceDim infers the length of x[start:end:step] along a dim of size d.
func sliceDim(d Dim, start, end, step int64) Dim {
	if !d.Fixed() {
		if step == 1 && start >= 0 && end >= 1<<62 && start == 0 {
			return d
		}
		if step == 1 && start < 0 && end >= 1<<62 {
			return D(-start)
		}
		if step == 1 && start >= 0 && end > start && end < 1<<62 {
			return D(end - start)
		}
		return Unknown
	}
	n := d.Size
	clamp := func(v, lo, hi int64) int64 { return min(max(v, lo), hi) }
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	if step > 0 {
		start, end = clamp(start, 0, n), clamp(end, 0, n)
		if end <= start {
			return D(0)
		}
		return D((end - start + step - 1) / step)
	}
	start, end = clamp(start, -1, n-1), clamp(end, -1, n-1)
	if start <= end {
		return D(0)
	}
	return D((start - end - step - 1) / -step)
}
