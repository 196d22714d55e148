package train

import (
	"fmt"

	"github.com/medgr2/medgr2/graph"
)

// inline replays every node of src into dst and returns dst's values for
// src's outputs, by name. A src input whose name is in bind reads the bound
// dst value (which must have the same dtype and shape); any other src input
// becomes a dst input of the same name, or reuses a dst value already
// called that (so two inlined graphs share their weights). In-memory
// initializers of src are copied as initializers.
//
// It is how the trainer composes the models package's decoder (whose first
// input is inputs_embeds) with the embedding lookup, the image splice and
// the loss, all in one graph that graph.BuildTrainStep can differentiate.
func inline(dst, src *graph.Graph, bind map[string]*graph.Value, fix map[string]int64) (map[string]*graph.Value, error) {
	if err := src.Err(); err != nil {
		return nil, fmt.Errorf("train: inline %s: %w", src.Name(), err)
	}
	m := map[*graph.Value]*graph.Value{}
	for _, in := range src.Inputs() {
		v, err := bindInput(dst, in, bind, fix)
		if err != nil {
			return nil, err
		}
		m[in] = v
	}
	for _, init := range src.Initializers() {
		if init.Data() == nil {
			return nil, fmt.Errorf("%w: inline %s: initializer %q has no in-memory data", ErrConfig, src.Name(), init.Name())
		}
		m[init] = dst.Initializer(init.Name(), init.Data())
	}
	for _, n := range src.Nodes() {
		ins := n.Inputs()
		for i, in := range ins {
			if in == nil {
				continue
			}
			v, ok := m[in]
			if !ok {
				return nil, fmt.Errorf("%w: inline %s: node %s reads %q before it is defined", ErrConfig, src.Name(), n.Name(), in.Name())
			}
			ins[i] = v
		}
		outs := n.Outputs()
		types := make([]graph.OutType, len(outs))
		for i, o := range outs {
			types[i] = graph.OutType{DType: o.DType(), Shape: fixDims(o.Shape(), fix)}
		}
		got := dst.AddNode(n.OpType(), ins, n.Attrs(), types...)
		for i, o := range outs {
			m[o] = got[i]
		}
	}
	if err := dst.Err(); err != nil {
		return nil, fmt.Errorf("train: inline %s: %w", src.Name(), err)
	}
	res := map[string]*graph.Value{}
	for _, o := range src.Outputs() {
		res[o.Name()] = m[o]
	}
	return res, nil
}

// fixDims replaces the symbolic dims named in fix by their sizes, and
// drops the names of fixed dims.
func fixDims(s graph.Shape, fix map[string]int64) graph.Shape {
	for i, d := range s {
		if n, ok := fix[d.Param]; ok && !d.Fixed() {
			s[i] = graph.D(n)
		} else if d.Fixed() {
			s[i] = graph.D(d.Size)
		}
	}
	return s
}

func bindInput(dst *graph.Graph, in *graph.Value, bind map[string]*graph.Value, fix map[string]int64) (*graph.Value, error) {
	shape := fixDims(in.Shape(), fix)
	v, ok := bind[in.Name()]
	if !ok {
		v, ok = dst.Lookup(in.Name())
	}
	if !ok {
		return dst.Input(in.Name(), in.DType(), shape), nil
	}
	if v.DType() != in.DType() || !v.Shape().Equal(shape) {
		return nil, fmt.Errorf("%w: inline: %q is %v%v, the inlined graph expects %v%v",
			ErrShape, in.Name(), v.DType(), v.Shape(), in.DType(), shape)
	}
	return v, nil
}
