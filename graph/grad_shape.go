package graph

import "fmt"

// gradReshape covers Reshape, Squeeze, Unsqueeze and Flatten: the gradient
// takes the input's shape back.
func gradReshape(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	out := make([]*Value, len(n.inputs))
	out[0] = reshapeLike(r.g, dy[0], n.inputs[0])
	return out, nil
}

func gradExpand(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	return []*Value{r.unbroadcast(dy[0], n.inputs[0]), nil}, nil
}

// gradTranspose applies the inverse permutation.
func gradTranspose(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	x := n.inputs[0]
	perm := attrInts(n, "perm")
	if perm == nil {
		for i := x.Rank() - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	inv := make([]int64, len(perm))
	for i, p := range perm {
		inv[p] = int64(i)
	}
	return []*Value{r.g.Transpose(dy[0], inv...)}, nil
}

// gradConcat slices each input's part back out of d.
func gradConcat(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	d := dy[0]
	a, err := normAxis(attrInt(n, "axis", 0), d.Rank())
	if err != nil {
		return nil, err
	}
	out := make([]*Value, len(n.inputs))
	off := int64(0)
	for i, x := range n.inputs {
		size := x.shape[a]
		if !size.Fixed() {
			return nil, fmt.Errorf("%w: Concat input %d has non-static size %v on axis %d", ErrUnsupported, i, size, a)
		}
		if need[i] {
			out[i] = reshapeLike(r.g, r.g.Slice(d, []int64{off}, []int64{off + size.Size}, []int64{int64(a)}, nil), x)
		}
		off += size.Size
	}
	return out, nil
}

// gradSplit concatenates the pieces' gradients (zeros for unused pieces).
func gradSplit(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	x := n.inputs[0]
	out := make([]*Value, len(n.inputs))
	out[0] = reshapeLike(r.g, r.g.Concat(attrInt(n, "axis", 0), dy...), x)
	return out, nil
}

// gradSlice pads d back to the input's shape with zeros (steps ±1; a
// negative step first reverses d along its axis).
func gradSlice(r *rev, n *Node, dy []*Value, need []bool) ([]*Value, error) {
	g, x, d := r.g, n.inputs[0], dy[0]
	if !x.shape.Fixed() {
		return nil, fmt.Errorf("%w: Slice gradient needs a static input shape, got %v", ErrUnsupported, x.shape)
	}
	spec, err := sliceSpec(n)
	if err != nil {
		return nil, err
	}
	pads := make([]int64, 2*x.Rank())
	for i, ax := range spec.axes {
		a, err := normAxis(ax, x.Rank())
		if err != nil {
			return nil, err
		}
		size := x.shape[a].Size
		start, count, step := sliceRange(size, spec.starts[i], spec.ends[i], spec.steps[i])
		switch step {
		case 1:
			pads[a], pads[x.Rank()+a] = start, size-start-count
		case -1:
			if count > 0 {
				d = g.Slice(d, []int64{-1}, []int64{-SliceEnd}, []int64{int64(a)}, []int64{-1})
			}
			pads[a], pads[x.Rank()+a] = start-count+1, size-start-1
		default:
			return nil, fmt.Errorf("%w: Slice gradient with step %d", ErrUnsupported, step)
		}
	}
	dx := g.AddNode("Pad", []*Value{d, g.ConstInt64s(pads...)}, nil, OutType{x.dtype, x.shape})[0]
	out := make([]*Value, len(n.inputs))
	out[0] = dx
	return out, nil
}

type sliceParams struct{ starts, ends, axes, steps []int64 }

// sliceSpec reads a Slice node's constant starts/ends/axes/steps.
func sliceSpec(n *Node) (sliceParams, error) {
	var p sliceParams
	var err error
	if len(n.inputs) < 3 {
		return p, fmt.Errorf("%w: Slice with %d inputs", ErrInvalidArg, len(n.inputs))
	}
	if p.starts, err = constInts(n.inputs[1]); err != nil {
		return p, err
	}
	if p.ends, err = constInts(n.inputs[2]); err != nil {
		return p, err
	}
	if len(n.inputs) > 3 && n.inputs[3] != nil {
		if p.axes, err = constInts(n.inputs[3]); err != nil {
			return p, err
		}
	} else {
		for i := range p.starts {
			p.axes = append(p.axes, int64(i))
		}
	}
	if len(n.inputs) > 4 && n.inputs[4] != nil {
		if p.steps, err = constInts(n.inputs[4]); err != nil {
			return p, err
		}
	} else {
		for range p.starts {
			p.steps = append(p.steps, 1)
		}
	}
	if len(p.ends) != len(p.starts) || len(p.axes) != len(p.starts) || len(p.steps) != len(p.starts) {
		return p, fmt.Errorf("%w: Slice starts/ends/axes/steps lengths differ", ErrInvalidArg)
	}
	return p, nil
}

// sliceRange resolves one axis of a Slice with ONNX clamping: the first
// index taken, how many elements and the step.
func sliceRange(size, start, end, step int64) (first, count, st int64) {
	if start < 0 {
		start += size
	}
	if end < 0 {
		end += size
	}
	if step > 0 {
		start, end = min(max(start, 0), size), min(max(end, 0), size)
		if end <= start {
			return start, 0, step
		}
		return start, (end - start + step - 1) / step, step
	}
	start, end = min(max(start, -1), size-1), min(max(end, -1), size-1)
	if start <= end {
		return start, 0, step
	}
	return start, (start - end - step - 1) / -step, step
}
