package models_test

import (
	"math"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
)

// refModel is a plain-loop reference of the decoder and vision encoder,
// written from the architecture description, independent of the graph code.
type refModel struct {
	cfg models.ArchConfig
	w   map[string]*graph.Tensor
}

func (r refModel) get(name string) []float32 { return r.w[name].F32 }

// linear returns W·x + b for W [out, in].
func (r refModel) linear(x []float32, weight, bias string) []float32 {
	w := r.w[weight]
	out := int(w.Dims[0])
	in := len(w.F32) / out // [out, in…] with trailing dims flattened (Conv3d patch weight)
	y := make([]float32, out)
	for o := range out {
		var s float64
		for i := range in {
			s += float64(w.F32[o*in+i]) * float64(x[i])
		}
		if bias != "" {
			s += float64(r.get(bias)[o])
		}
		y[o] = float32(s)
	}
	return y
}

func (r refModel) rmsNorm(x []float32, weight string) []float32 {
	var ms float64
	for _, v := range x {
		ms += float64(v) * float64(v)
	}
	inv := 1 / math.Sqrt(ms/float64(len(x))+r.cfg.RMSNormEps)
	w := r.get(weight)
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(float64(v)*inv) * w[i]
	}
	return y
}

func (r refModel) layerNorm(x []float32, prefix string) []float32 {
	var mu, vr float64
	for _, v := range x {
		mu += float64(v)
	}
	mu /= float64(len(x))
	for _, v := range x {
		vr += (float64(v) - mu) * (float64(v) - mu)
	}
	vr /= float64(len(x))
	w, b := r.get(prefix+".weight"), r.get(prefix+".bias")
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32((float64(v)-mu)/math.Sqrt(vr+1e-6))*w[i] + b[i]
	}
	return y
}

// rotate applies rotary embedding with per-pair angles ang[0:d/2] to x[0:d].
func rotate(x []float32, ang []float64) []float32 {
	d := len(x)
	y := make([]float32, d)
	for i := range d {
		a := ang[i%(d/2)]
		var rh float64
		if i < d/2 {
			rh = -float64(x[i+d/2])
		} else {
			rh = float64(x[i-d/2])
		}
		y[i] = float32(float64(x[i])*math.Cos(a) + rh*math.Sin(a))
	}
	return y
}

// attend returns softmax(q·k/√d over allowed keys)·v; with no allowed key
// every key gets the same weight (what -1e9 masking gives).
func attend(q []float32, keys, vals [][]float32, allowed []bool) []float32 {
	d := len(q)
	sc := make([]float64, len(keys))
	mx := math.Inf(-1)
	for j, k := range keys {
		if !allowed[j] {
			sc[j] = -1e9
		} else {
			var s float64
			for i := range d {
				s += float64(q[i]) * float64(k[i])
			}
			sc[j] = s / math.Sqrt(float64(d))
		}
		mx = math.Max(mx, sc[j])
	}
	var z float64
	for j := range sc {
		sc[j] = math.Exp(sc[j] - mx)
		z += sc[j]
	}
	out := make([]float32, d)
	for j, v := range vals {
		for i := range d {
			out[i] += float32(sc[j] / z * float64(v[i]))
		}
	}
	return out
}

func add(a, b []float32) []float32 {
	y := make([]float32, len(a))
	for i := range a {
		y[i] = a[i] + b[i]
	}
	return y
}

// decode runs the decoder over full sequences (no cache): embeds [B][S][H],
// mask [B][S], pos [3][B][S]; it returns the final hidden states [B][S][H].
func (r refModel) decode(embeds [][][]float32, mask [][]int64, pos [3][][]int64) [][][]float32 {
	c := r.cfg
	hd, grp := c.HeadDim(), c.NumHeads/c.NumKVHeads
	inv := make([]float64, hd/2)
	sect := make([]int, hd/2)
	f := 0
	for row, n := range c.MRopeSection {
		for range n {
			sect[f] = row
			f++
		}
	}
	for i := range inv {
		inv[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(hd))
	}
	out := make([][][]float32, len(embeds))
	for b, xs := range embeds {
		S := len(xs)
		x := make([][]float32, S)
		copy(x, xs)
		angles := make([][]float64, S)
		for s := range S {
			angles[s] = make([]float64, hd/2)
			for i := range hd / 2 {
				angles[s][i] = float64(pos[sect[i]][b][s]) * inv[i]
			}
		}
		for l := range c.NumLayers {
			x = r.layer(l, x, angles, mask[b], hd, grp)
		}
		for s := range S {
			x[s] = r.rmsNorm(x[s], "model.norm.weight")
		}
		out[b] = x
	}
	return out
}

func (r refModel) layer(l int, x [][]float32, angles [][]float64, mask []int64, hd, grp int) [][]float32 {
	c := r.cfg
	p := func(s string) string { return "model.layers." + itoa(l) + "." + s }
	S := len(x)
	qs, ks, vs := make([][]float32, S), make([][]float32, S), make([][]float32, S)
	for s := range S {
		h := r.rmsNorm(x[s], p("input_layernorm.weight"))
		qs[s] = r.linear(h, p("self_attn.q_proj.weight"), p("self_attn.q_proj.bias"))
		ks[s] = r.linear(h, p("self_attn.k_proj.weight"), p("self_attn.k_proj.bias"))
		vs[s] = r.linear(h, p("self_attn.v_proj.weight"), p("self_attn.v_proj.bias"))
	}
	y := make([][]float32, S)
	for s := range S {
		ctx := make([]float32, 0, c.HiddenSize)
		for head := range c.NumHeads {
			kvh := head / grp
			q := rotate(qs[s][head*hd:(head+1)*hd], angles[s])
			keys, vals := make([][]float32, S), make([][]float32, S)
			allowed := make([]bool, S)
			for t := range S {
				keys[t] = rotate(ks[t][kvh*hd:(kvh+1)*hd], angles[t])
				vals[t] = vs[t][kvh*hd : (kvh+1)*hd]
				allowed[t] = t <= s && mask[t] != 0
			}
			ctx = append(ctx, attend(q, keys, vals, allowed)...)
		}
		h := add(x[s], r.linear(ctx, p("self_attn.o_proj.weight"), ""))
		n := r.rmsNorm(h, p("post_attention_layernorm.weight"))
		gate := r.linear(n, p("mlp.gate_proj.weight"), "")
		up := r.linear(n, p("mlp.up_proj.weight"), "")
		for i := range gate {
			g := float64(gate[i])
			gate[i] = float32(g/(1+math.Exp(-g))) * up[i]
		}
		y[s] = add(h, r.linear(gate, p("mlp.down_proj.weight"), ""))
	}
	return y
}

// logits maps hidden states to vocabulary logits (tied or untied head).
func (r refModel) logits(h []float32) []float32 {
	if r.cfg.TieWordEmbeddings {
		return r.linear(h, "model.embed_tokens.weight", "")
	}
	return r.linear(h, "lm_head.weight", "")
}

// embed looks token ids up in the embedding table.
func (r refModel) embed(id int64) []float32 {
	h := r.cfg.HiddenSize
	return append([]float32(nil), r.get("model.embed_tokens.weight")[int(id)*h:(int(id)+1)*h]...)
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
