package models

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/graph/onnxpb"
)

// Bundle is a validated model bundle on disk.
type Bundle struct {
	Dir      string    // bundle folder
	Manifest *Manifest // parsed model.json
}

// Path returns the absolute path of a file named relative to the bundle.
func (b *Bundle) Path(rel string) string { return filepath.Join(b.Dir, filepath.FromSlash(rel)) }

// VisionEncoderPath returns the vision encoder ONNX file.
func (b *Bundle) VisionEncoderPath() string { return b.Path(b.Manifest.Files.VisionEncoder) }

// EmbedTokensPath returns the embedding ONNX file.
func (b *Bundle) EmbedTokensPath() string { return b.Path(b.Manifest.Files.EmbedTokens) }

// DecoderPath returns the decoder ONNX file.
func (b *Bundle) DecoderPath() string { return b.Path(b.Manifest.Files.Decoder) }

// WeightsPath returns the safetensors weights file.
func (b *Bundle) WeightsPath() string { return b.Path(b.Manifest.Files.Weights) }

// TokenizerPath returns tokenizer.json.
func (b *Bundle) TokenizerPath() string { return b.Path(b.Manifest.Files.Tokenizer) }

// Load reads and validates the bundle in dir: model.json against the schema,
// every named file present, each ONNX file parseable with inputs and
// outputs matching the architecture (names, element types, ranks, fixed
// dims), and every external-data reference inside its weights file. Errors
// are *BundleError wrapping ErrBadManifest, ErrMissingFile, ErrBadONNX,
// ErrSignature or ErrBadWeights.
func Load(ctx context.Context, dir string) (*Bundle, error) {
	fail := func(file string, err error) (*Bundle, error) {
		return nil, &BundleError{Dir: dir, File: file, Err: err}
	}
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return fail(ManifestName, fmt.Errorf("%w: %v", ErrMissingFile, err))
	}
	m, err := ParseManifest(data)
	if err != nil {
		return fail(ManifestName, err)
	}
	b := &Bundle{Dir: dir, Manifest: m}
	for _, rel := range []string{m.Files.Tokenizer, m.Files.Weights} {
		if st, err := os.Stat(b.Path(rel)); err != nil || st.IsDir() {
			return fail(rel, fmt.Errorf("%w: %s", ErrMissingFile, rel))
		}
	}
	if err := checkSafetensors(b.WeightsPath()); err != nil {
		return fail(m.Files.Weights, err)
	}
	for _, c := range []struct {
		rel   string
		build func(ArchConfig, BuildOptions) (*graph.Graph, error)
	}{{m.Files.VisionEncoder, BuildVision}, {m.Files.EmbedTokens, BuildEmbed}, {m.Files.Decoder, BuildDecoder}} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		want, err := c.build(m.Architecture, BuildOptions{ParamsAsInputs: true, Reward: m.HasRole(RoleReward)})
		if err != nil {
			return fail(c.rel, err)
		}
		if err := checkONNX(b.Path(c.rel), want); err != nil {
			return fail(c.rel, err)
		}
	}
	return b, nil
}

// checkONNX parses the file at path and compares its signature with want's
// (want declares weights as inputs; those are expected as initializers).
func checkONNX(path string, want *graph.Graph) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMissingFile, err)
	}
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		return fmt.Errorf("%w: %v", ErrBadONNX, err)
	}
	gp := mp.GetGraph()
	if gp == nil || len(gp.GetNode()) == 0 || len(gp.GetOutput()) == 0 {
		return fmt.Errorf("%w: no graph, nodes or outputs (truncated?)", ErrBadONNX)
	}
	inits := map[string]*onnxpb.TensorProto{}
	for _, t := range gp.GetInitializer() {
		inits[t.GetName()] = t
	}
	have := map[string]*onnxpb.ValueInfoProto{}
	for _, vi := range gp.GetInput() {
		have[vi.GetName()] = vi
	}
	var runtimeInputs int
	for _, v := range want.Inputs() {
		if isWeight(v.Name()) {
			if _, ok := inits[v.Name()]; !ok {
				if _, ok := have[v.Name()]; !ok {
					return fmt.Errorf("%w: weight %q is neither an initializer nor an input", ErrSignature, v.Name())
				}
			}
			continue
		}
		runtimeInputs++
		if err := matchValue("input", have[v.Name()], v); err != nil {
			return err
		}
	}
	if extra := len(gp.GetInput()) - runtimeInputs - countWeightInputs(gp); extra != 0 {
		return fmt.Errorf("%w: file has %d inputs, architecture expects %d", ErrSignature, len(gp.GetInput())-countWeightInputs(gp), runtimeInputs)
	}
	outs := map[string]*onnxpb.ValueInfoProto{}
	for _, vi := range gp.GetOutput() {
		outs[vi.GetName()] = vi
	}
	for _, v := range want.Outputs() {
		if err := matchValue("output", outs[v.Name()], v); err != nil {
			return err
		}
	}
	return checkExternal(filepath.Dir(path), gp.GetInitializer())
}

func isWeight(name string) bool {
	return strings.HasSuffix(name, ".weight") || strings.HasSuffix(name, ".bias")
}

func countWeightInputs(gp *onnxpb.GraphProto) int {
	n := 0
	for _, vi := range gp.GetInput() {
		if isWeight(vi.GetName()) {
			n++
		}
	}
	return n
}

// matchValue compares one declared input or output with the expected value.
func matchValue(kind string, vi *onnxpb.ValueInfoProto, want *graph.Value) error {
	if vi == nil {
		return fmt.Errorf("%w: missing %s %q", ErrSignature, kind, want.Name())
	}
	tt := vi.GetType().GetTensorType()
	if tt == nil || graph.DType(tt.GetElemType()) != want.DType() {
		return fmt.Errorf("%w: %s %q has element type %d, want %v", ErrSignature, kind, want.Name(), tt.GetElemType(), want.DType())
	}
	dims := tt.GetShape().GetDim()
	ws := want.Shape()
	if len(dims) != len(ws) {
		return fmt.Errorf("%w: %s %q has rank %d, want %d %v", ErrSignature, kind, want.Name(), len(dims), len(ws), ws)
	}
	for i, d := range dims {
		dv, isFixed := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue)
		if isFixed && ws[i].Fixed() && dv.DimValue != ws[i].Size {
			return fmt.Errorf("%w: %s %q dim %d is %d, want %v", ErrSignature, kind, want.Name(), i, dv.DimValue, ws)
		}
	}
	return nil
}

// checkExternal verifies every external-data initializer lies inside its
// file (no path escapes, offset+length within the file size).
func checkExternal(dir string, inits []*onnxpb.TensorProto) error {
	sizes := map[string]int64{}
	for _, t := range inits {
		if t.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
			continue
		}
		kv := map[string]string{}
		for _, e := range t.GetExternalData() {
			kv[e.GetKey()] = e.GetValue()
		}
		loc := kv["location"]
		off, err1 := strconv.ParseInt(kv["offset"], 10, 64)
		n, err2 := strconv.ParseInt(kv["length"], 10, 64)
		if loc == "" || filepath.IsAbs(loc) || err1 != nil || err2 != nil || off < 0 || n < 0 {
			return fmt.Errorf("%w: initializer %q has bad external data %v", ErrBadWeights, t.GetName(), kv)
		}
		size, ok := sizes[loc]
		if !ok {
			st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(loc)))
			if err != nil {
				return fmt.Errorf("%w: weights file %q of initializer %q: %v", ErrMissingFile, loc, t.GetName(), err)
			}
			size = st.Size()
			sizes[loc] = size
		}
		if off+n > size {
			return fmt.Errorf("%w: initializer %q needs bytes [%d, %d) of %s, which has %d (truncated?)", ErrBadWeights, t.GetName(), off, off+n, loc, size)
		}
	}
	return nil
}

// checkSafetensors reads the header of a safetensors file and checks the
// file holds every byte the header declares (a truncated checkpoint is an
// error here, not when training reads it).
func checkSafetensors(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMissingFile, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadWeights, err)
	}
	var n [8]byte
	if _, err := io.ReadFull(f, n[:]); err != nil {
		return fmt.Errorf("%w: safetensors header: %v", ErrBadWeights, err)
	}
	hlen := binary.LittleEndian.Uint64(n[:])
	if hlen > 100<<20 || int64(hlen)+8 > st.Size() {
		return fmt.Errorf("%w: safetensors header of %d bytes in a file of %d (truncated?)", ErrBadWeights, hlen, st.Size())
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return fmt.Errorf("%w: safetensors header: %v", ErrBadWeights, err)
	}
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &entries); err != nil {
		return fmt.Errorf("%w: safetensors header: %v", ErrBadWeights, err)
	}
	var end int64
	for name, raw := range entries {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			Offsets [2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("%w: safetensors entry %q: %v", ErrBadWeights, name, err)
		}
		end = max(end, e.Offsets[1])
	}
	if have := st.Size() - 8 - int64(hlen); end > have {
		return fmt.Errorf("%w: safetensors data needs %d bytes, the file has %d (truncated?)", ErrBadWeights, end, have)
	}
	return nil
}
