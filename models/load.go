package models

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/graph/onnxpb"
	"github.com/medgr2/medgr2/runtime"
)

// Bundle is a validated model bundle on disk.
type Bundle struct {
	Dir      string    // bundle folder
	Manifest *Manifest // model.json, or derived from the Hugging Face files
	Names    Names     // input names as the bundle's graphs spell them
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

// Load reads and validates the bundle in dir. The manifest is model.json
// when the folder has one; otherwise it comes from the Hugging Face files
// (config.json, preprocessor_config.json, generation_config.json,
// tokenizer.json; see ManifestFromHF), so a Qwen2-VL folder exported by
// another tool opens as it is. Every named file must be present, and each
// ONNX graph must declare the inputs and outputs of the Qwen2-VL contract
// with config.json's sizes (names, element types, ranks, fixed dims; never
// initializer names), with every external-data reference inside its file.
// Errors are *BundleError wrapping ErrBadManifest, ErrBadConfig,
// ErrMissingFile, ErrBadONNX, ErrSignature or ErrBadWeights.
func Load(ctx context.Context, dir string) (*Bundle, error) {
	return LoadDType(ctx, dir, DTypeAuto)
}

// LoadDType is Load with the graphs' dtype variant chosen (see DType) for
// the CPU: DTypeAuto takes the fp32 graphs, or, when a folder ships none,
// the first weight-quantized variant present, then fp16 and q4f16.
func LoadDType(ctx context.Context, dir string, dtype DType) (*Bundle, error) {
	return LoadDevice(ctx, dir, dtype, runtime.CPU)
}

// LoadDevice is LoadDType for a device: with DTypeAuto, an explicit CUDA
// device (runtime.DeviceCUDA) prefers the fp16, then q4f16 graphs, as
// transformers.js does; auto and CPU devices prefer fp32 (ONNX Runtime's
// CPU kernels are float32, and auto may fall back to the CPU).
func LoadDevice(ctx context.Context, dir string, dtype DType, dev runtime.Device) (*Bundle, error) {
	fail := func(file string, err error) (*Bundle, error) {
		return nil, &BundleError{Dir: dir, File: file, Err: err}
	}
	m, file, err := readManifest(dir)
	if err != nil {
		return fail(file, err)
	}
	if m.Files, err = withVariant(dir, m.Files, dtype, dev.Kind == runtime.DeviceCUDA); err != nil {
		return fail(m.Files.Decoder, err)
	}
	b := &Bundle{Dir: dir, Manifest: m}
	need := []string{m.Files.Tokenizer}
	if m.Files.Weights != "" {
		need = append(need, m.Files.Weights)
	}
	for _, rel := range need {
		if st, err := os.Stat(b.Path(rel)); err != nil || st.IsDir() {
			return fail(rel, fmt.Errorf("%w: %s", ErrMissingFile, rel))
		}
	}
	if m.Files.Weights != "" {
		if err := checkSafetensors(b.WeightsPath()); err != nil {
			return fail(m.Files.Weights, err)
		}
	}
	var dtypes [3]map[string]graph.DType
	for k, c := range []struct {
		rel  string
		want signature
	}{
		{m.Files.VisionEncoder, visionSignature(m.Architecture)},
		{m.Files.EmbedTokens, embedSignature(m.Architecture)},
		{m.Files.Decoder, decoderSignature(m.Architecture, m.HasRole(RoleReward))},
	} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		found, dts, err := checkONNX(b.Path(c.rel), c.want)
		if errors.Is(err, ErrMissingFile) {
			if vs := variants(b.Path(c.rel)); len(vs) > 0 {
				err = fmt.Errorf("%w: %s is absent; the folder has the variants %v (pick one with --dtype)", ErrMissingFile, filepath.Base(c.rel), vs)
			}
		}
		if err != nil {
			return fail(c.rel, err)
		}
		if g, ok := found[GridTHW]; ok {
			b.Names.GridTHW = g
		}
		if _, ok := found[NumLogitsToKeep]; ok {
			b.Names.LogitsToKeep = true
		}
		dtypes[k] = dts
	}
	if b.Names.Half, err = halfPorts(dtypes[0], dtypes[1], dtypes[2], m.Architecture.NumLayers); err != nil {
		return fail(m.Files.Decoder, err)
	}
	return b, nil
}

// readManifest returns the bundle's manifest and the file it came from:
// model.json, or the Hugging Face files when there is none.
func readManifest(dir string) (*Manifest, string, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	switch {
	case err == nil:
		m, err := ParseManifest(data)
		return m, ManifestName, err
	case !errors.Is(err, fs.ErrNotExist):
		return nil, ManifestName, fmt.Errorf("%w: %v", ErrMissingFile, err)
	}
	if _, err := os.Stat(filepath.Join(dir, HFConfigName)); err != nil {
		return nil, ManifestName, fmt.Errorf("%w: neither %s nor %s", ErrMissingFile, ManifestName, HFConfigName)
	}
	m, err := ManifestFromHF(dir)
	return m, HFConfigName, err
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

// variants lists the dtype variants of the graph at path that exist beside
// it (decoder_model_merged_fp16.onnx, …_q4f16.onnx), by file name.
func variants(path string) []string {
	stem := strings.TrimSuffix(path, ".onnx")
	found, _ := filepath.Glob(stem + "_*.onnx")
	out := make([]string, len(found))
	for i, f := range found {
		out[i] = filepath.Base(f)
	}
	return out
}
