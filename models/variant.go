package models

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/medgr2/medgr2/graph/onnxpb"
	"github.com/medgr2/medgr2/internal/atomicfile"
	"github.com/medgr2/medgr2/runtime"
)

// This file writes the dtype variants of a bundle's float32 graphs, as
// onnx-community ships them beside the plain files:
//
//   - fp16: every activation and weight in float16, except the numerically
//     sensitive ops (softmax, the reductions and square roots of RMSNorm and
//     LayerNorm, and the RoPE tables, which depend only on position_ids),
//     which run in float32 between Casts. pixel_values stays a float32
//     input (transformers.js feeds the processor's float32 values).
//   - q4: every MatMul by a 2-D weight becomes com.microsoft MatMulNBits
//     (4-bit, blocks of QuantBlockSize along K, symmetric, no zero points);
//     activations stay float32.
//   - q4f16: q4's MatMulNBits with the fp16 conversion applied on top
//     (float16 activations and scales).
//
// Each variant is <graph><suffix>.onnx with its weights in
// <graph><suffix>.onnx_data.

// QuantBlockSize is the number of weights along K that share one scale in
// the 4-bit variants.
const QuantBlockSize = 32

// msDomain is the operator domain of MatMulNBits.
const msDomain = "com.microsoft"

// fp16Blocked are ops that run in float32 in an fp16 graph.
var fp16Blocked = map[string]bool{
	"Softmax": true, "LogSoftmax": true, "ReduceMean": true, "ReduceSum": true,
	"Sqrt": true, "Reciprocal": true, "Pow": true, "Cos": true, "Sin": true, "Range": true,
}

// fp16Elementwise are ops that follow their consumers into float32 when
// every consumer runs in float32 (x·x before ReduceMean).
var fp16Elementwise = map[string]bool{"Mul": true, "Add": true, "Sub": true, "Div": true, "Neg": true}

// ExportVariants writes the dtype variants of every graph of bundle b
// beside its float32 graphs (see the file comment); DTypeFP32 and
// DTypeAuto in dtypes are ignored, other variants are an error wrapping
// ErrDType.
func ExportVariants(ctx context.Context, b *Bundle, dtypes []DType) error {
	for _, d := range dtypes {
		if d == DTypeFP32 || d == DTypeAuto || d == "" {
			continue
		}
		if d != DTypeFP16 && d != DTypeQ4 && d != DTypeQ4F16 {
			return fmt.Errorf("%w: export writes fp32, fp16, q4 and q4f16, not %s", ErrDType, d)
		}
		for _, rel := range []string{b.Manifest.Files.VisionEncoder, b.Manifest.Files.EmbedTokens, b.Manifest.Files.Decoder} {
			if err := ctx.Err(); err != nil {
				return err
			}
			src := b.Path(rel)
			dst := strings.TrimSuffix(src, ".onnx") + dtypeSuffix[d] + ".onnx"
			if err := writeVariant(src, dst, d); err != nil {
				return fmt.Errorf("models: export %s: %w", filepath.Base(dst), err)
			}
		}
	}
	return nil
}

// writeVariant reads the float32 graph at src (weights inline or external)
// and writes its dtype variant at dst with weights in dst+"_data".
func writeVariant(src, dst string, d DType) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMissingFile, err)
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		return fmt.Errorf("%w: %v", ErrBadONNX, err)
	}
	gp := mp.GetGraph()
	if err := inlineExternal(filepath.Dir(src), gp); err != nil {
		return err
	}
	if d == DTypeQ4 || d == DTypeQ4F16 {
		n, err := quantizeMatMuls(gp, QuantBlockSize)
		if err != nil {
			return err
		}
		if n > 0 {
			mp.OpsetImport = append(mp.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(msDomain), Version: proto.Int64(1)})
		}
	}
	if d == DTypeFP16 || d == DTypeQ4F16 {
		if err := toFloat16(gp, map[string]bool{PixelValues: true}); err != nil {
			return err
		}
	}
	prune(gp)
	blob := externalize(gp, filepath.Base(dst)+"_data")
	if err := atomicfile.Write(dst+"_data", blob); err != nil {
		return err
	}
	out, err := proto.Marshal(&mp)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadONNX, err)
	}
	return atomicfile.Write(dst, out)
}

// inlineExternal reads every external-data initializer of gp into its
// raw_data.
func inlineExternal(dir string, gp *onnxpb.GraphProto) error {
	if err := checkExternal(dir, gp.GetInitializer()); err != nil {
		return err
	}
	files := map[string][]byte{}
	for _, t := range gp.GetInitializer() {
		if t.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
			continue
		}
		kv := map[string]string{}
		for _, e := range t.GetExternalData() {
			kv[e.GetKey()] = e.GetValue()
		}
		blob, ok := files[kv["location"]]
		if !ok {
			var err error
			if blob, err = os.ReadFile(filepath.Join(dir, filepath.FromSlash(kv["location"]))); err != nil {
				return fmt.Errorf("%w: %v", ErrMissingFile, err)
			}
			files[kv["location"]] = blob
		}
		off, _ := strconv.ParseInt(kv["offset"], 10, 64)
		n, _ := strconv.ParseInt(kv["length"], 10, 64)
		t.RawData = append([]byte(nil), blob[off:off+n]...)
		t.ExternalData, t.DataLocation = nil, nil
	}
	return nil
}

// externalize moves every initializer's raw_data into one blob (64-byte
// aligned offsets) referenced as location, and returns the blob.
func externalize(gp *onnxpb.GraphProto, location string) []byte {
	var blob []byte
	for _, t := range gp.GetInitializer() {
		if len(t.RawData) == 0 {
			continue
		}
		for len(blob)%dataAlign != 0 {
			blob = append(blob, 0)
		}
		off := len(blob)
		blob = append(blob, t.RawData...)
		t.ExternalData = []*onnxpb.StringStringEntryProto{
			{Key: proto.String("location"), Value: proto.String(location)},
			{Key: proto.String("offset"), Value: proto.String(strconv.Itoa(off))},
			{Key: proto.String("length"), Value: proto.String(strconv.Itoa(len(t.RawData)))},
		}
		t.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
		t.RawData = nil
	}
	return blob
}

// prune drops nodes whose outputs nothing reads and initializers no node
// reads (the Transposes a quantized MatMul replaced, the float32 weights
// a float16 copy replaced).
func prune(gp *onnxpb.GraphProto) {
	for {
		used := map[string]bool{}
		for _, o := range gp.GetOutput() {
			used[o.GetName()] = true
		}
		for _, n := range gp.GetNode() {
			for _, in := range n.GetInput() {
				used[in] = true
			}
		}
		kept := gp.Node[:0]
		for _, n := range gp.GetNode() {
			live := false
			for _, o := range n.GetOutput() {
				live = live || used[o]
			}
			if live {
				kept = append(kept, n)
			}
		}
		changed := len(kept) != len(gp.Node)
		gp.Node = kept
		inits := gp.Initializer[:0]
		for _, t := range gp.GetInitializer() {
			if used[t.GetName()] {
				inits = append(inits, t)
			}
		}
		gp.Initializer = inits
		if !changed {
			return
		}
	}
}

// floatValues reads a float32 tensor's values (raw_data or float_data).
func floatValues(t *onnxpb.TensorProto) []float32 {
	if len(t.RawData) > 0 {
		out := make([]float32, len(t.RawData)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.RawData[i*4:]))
		}
		return out
	}
	return t.GetFloatData()
}

// halfTensor returns a float16 copy of the float32 tensor t called name,
// values clamped to ±65504 (a -1e9 mask stays finite, so softmax of a
// fully masked row is uniform, not NaN).
func halfTensor(t *onnxpb.TensorProto, name string) *onnxpb.TensorProto {
	vs := floatValues(t)
	raw := make([]byte, 2*len(vs))
	for i, v := range vs {
		v = max(min(v, 65504), -65504)
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(runtime.HalfFromFloat32(v)))
	}
	return &onnxpb.TensorProto{Name: proto.String(name), Dims: t.GetDims(),
		DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT16)), RawData: raw}
}

func attrInt(n *onnxpb.NodeProto, name string, def int64) int64 {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a.GetI()
		}
	}
	return def
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}
