package models

import (
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	"github.com/medgr2/medgr2/graph/onnxpb"
)

// Q4Weight is a [N, K] float32 weight quantized to 4 bits in blocks of
// BlockSize along K, laid out as com.microsoft MatMulNBits reads it
// (symmetric, zero point 8, so no zero_points input).
type Q4Weight struct {
	N, K, BlockSize int
	// Packed is [N, blocks, BlockSize/2]: element k of row n is nibble
	// k%2 (low first) of byte (k%BlockSize)/2 of block k/BlockSize.
	Packed []byte
	// Scales is [N·blocks]: one scale per row and block.
	Scales []float32
}

// Blocks returns the number of blocks along K (K rounded up).
func (q *Q4Weight) Blocks() int { return (q.K + q.BlockSize - 1) / q.BlockSize }

// QuantizeQ4 quantizes w ([N, K], row-major) to 4 bits: each block's
// scale is its largest magnitude / 7 and q = clamp(round(w/scale), -8, 7)
// stored as q+8. K need not divide by blockSize (the last block is padded
// with zeros). blockSize must be a power of two of at least 16.
func QuantizeQ4(w []float32, n, k, blockSize int) (*Q4Weight, error) {
	if blockSize < 16 || blockSize&(blockSize-1) != 0 || n <= 0 || k <= 0 || len(w) != n*k {
		return nil, fmt.Errorf("%w: quantize [%d, %d] (%d values) in blocks of %d", ErrBadWeights, n, k, len(w), blockSize)
	}
	q := &Q4Weight{N: n, K: k, BlockSize: blockSize}
	nb := q.Blocks()
	q.Packed = make([]byte, n*nb*blockSize/2)
	q.Scales = make([]float32, n*nb)
	for r := range n {
		for b := range nb {
			lo, hi := b*blockSize, min((b+1)*blockSize, k)
			var amax float32
			for _, v := range w[r*k+lo : r*k+hi] {
				amax = max(amax, float32(math.Abs(float64(v))))
			}
			scale := amax / 7
			q.Scales[r*nb+b] = scale
			base := (r*nb + b) * blockSize / 2
			for j := range blockSize {
				code := byte(8)
				if kk := lo + j; kk < hi && scale > 0 {
					code = byte(max(-8, min(7, math.Round(float64(w[r*k+kk]/scale)))) + 8)
				}
				q.Packed[base+j/2] |= code << (4 * (j % 2))
			}
		}
	}
	return q, nil
}

// Dequantize returns the [N, K] float32 weight q stands for: (code-8)·scale.
func (q *Q4Weight) Dequantize() []float32 {
	nb := q.Blocks()
	out := make([]float32, q.N*q.K)
	for r := range q.N {
		for kk := range q.K {
			b, j := kk/q.BlockSize, kk%q.BlockSize
			code := q.Packed[(r*nb+b)*q.BlockSize/2+j/2] >> (4 * (j % 2)) & 0xf
			out[r*q.K+kk] = float32(int(code)-8) * q.Scales[r*nb+b]
		}
	}
	return out
}

// quantizeMatMuls replaces every MatMul whose right operand is a 2-D
// float32 initializer W [K, N], or Transpose(W [N, K]), by MatMulNBits with
// W quantized (QuantizeQ4), and returns how many it replaced.
func quantizeMatMuls(gp *onnxpb.GraphProto, blockSize int) (int, error) {
	inits := map[string]*onnxpb.TensorProto{}
	for _, t := range gp.GetInitializer() {
		inits[t.GetName()] = t
	}
	producer := map[string]*onnxpb.NodeProto{}
	for _, n := range gp.GetNode() {
		for _, o := range n.GetOutput() {
			producer[o] = n
		}
	}
	count := 0
	for _, n := range gp.GetNode() {
		if n.GetOpType() != "MatMul" || len(n.Input) != 2 {
			continue
		}
		w, rows, name := q4Operand(n.Input[1], inits, producer)
		if w == nil {
			continue
		}
		dims := w.GetDims()
		N, K := int(dims[0]), int(dims[1])
		vals := floatValues(w)
		if !rows { // W is [K, N]: transpose to [N, K]
			N, K = K, N
			t := make([]float32, len(vals))
			for i := range K {
				for j := range N {
					t[j*K+i] = vals[i*N+j]
				}
			}
			vals = t
		}
		q, err := QuantizeQ4(vals, N, K, blockSize)
		if err != nil {
			return count, fmt.Errorf("quantize %s: %w", name, err)
		}
		count++
		qName, sName := fmt.Sprintf("%s_Q4_%d", name, count), fmt.Sprintf("%s_scales_%d", name, count)
		scales := make([]byte, 4*len(q.Scales))
		for i, s := range q.Scales {
			binary.LittleEndian.PutUint32(scales[4*i:], math.Float32bits(s))
		}
		gp.Initializer = append(gp.Initializer,
			&onnxpb.TensorProto{Name: proto.String(qName), Dims: []int64{int64(N), int64(q.Blocks()), int64(blockSize / 2)},
				DataType: proto.Int32(int32(onnxpb.TensorProto_UINT8)), RawData: q.Packed},
			&onnxpb.TensorProto{Name: proto.String(sName), Dims: []int64{int64(N * q.Blocks())},
				DataType: proto.Int32(tFloat), RawData: scales})
		n.OpType, n.Domain = proto.String("MatMulNBits"), proto.String(msDomain)
		n.Input = []string{n.Input[0], qName, sName}
		n.Attribute = []*onnxpb.AttributeProto{intAttr("K", int64(K)), intAttr("N", int64(N)),
			intAttr("bits", 4), intAttr("block_size", int64(blockSize))}
	}
	return count, nil
}

// q4Operand returns the float32 weight behind a MatMul's right operand:
// the initializer itself ([K, N], rows false) or the initializer a 2-D
// Transpose reads ([N, K], rows true); nil when it is neither.
func q4Operand(in string, inits map[string]*onnxpb.TensorProto, producer map[string]*onnxpb.NodeProto) (*onnxpb.TensorProto, bool, string) {
	if t, ok := inits[in]; ok && t.GetDataType() == tFloat && len(t.GetDims()) == 2 {
		return t, false, in
	}
	p := producer[in]
	if p == nil || p.GetOpType() != "Transpose" || len(p.Input) != 1 {
		return nil, false, ""
	}
	t, ok := inits[p.Input[0]]
	if !ok || t.GetDataType() != tFloat || len(t.GetDims()) != 2 {
		return nil, false, ""
	}
	return t, true, p.Input[0]
}

// checkQuantized checks every MatMulNBits node of gp reads a packed weight
// and scales initializer of the sizes its K, N, bits and block_size
// attributes imply, so a file missing its scales is an error naming the
// node, not an ONNX Runtime abort.
func checkQuantized(gp *onnxpb.GraphProto) error {
	inits := map[string]*onnxpb.TensorProto{}
	for _, t := range gp.GetInitializer() {
		inits[t.GetName()] = t
	}
	for _, n := range gp.GetNode() {
		if n.GetOpType() != "MatMulNBits" {
			continue
		}
		K, N := attrInt(n, "K", 0), attrInt(n, "N", 0)
		bits, bs := attrInt(n, "bits", 4), attrInt(n, "block_size", 0)
		if K <= 0 || N <= 0 || bs < 16 || bits <= 0 || bits > 8 {
			return fmt.Errorf("%w: MatMulNBits %q has K=%d N=%d bits=%d block_size=%d", ErrBadONNX, n.GetName(), K, N, bits, bs)
		}
		nb := (K + bs - 1) / bs
		want := []struct {
			what string
			n    int64
		}{{"packed weight", N * nb * bs * bits / 8}, {"scales", N * nb}}
		for i, w := range want {
			if len(n.Input) < i+2 || n.Input[i+1] == "" {
				return fmt.Errorf("%w: MatMulNBits %q (output %v) has no %s input", ErrBadONNX, n.GetName(), n.GetOutput(), w.what)
			}
			t, ok := inits[n.Input[i+1]]
			if !ok {
				return fmt.Errorf("%w: MatMulNBits %q: %s %q is not an initializer of the file", ErrBadONNX, n.GetName(), w.what, n.Input[i+1])
			}
			size := int64(1)
			for _, d := range t.GetDims() {
				size *= d
			}
			if size != w.n {
				return fmt.Errorf("%w: MatMulNBits %q: %s %q has %d elements, K=%d N=%d block_size=%d need %d", ErrBadONNX, n.GetName(), w.what, n.Input[i+1], size, K, N, bs, w.n)
			}
		}
	}
	return nil
}
