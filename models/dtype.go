package models

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DType names a dtype variant of a bundle's graphs as transformers.js and
// onnx-community name them: the file decoder_model_merged<suffix>.onnx.
type DType string

// The variants. fp32, and the weight-quantized q8 (_quantized), int8,
// uint8, q4 and bnb4, take and return float32 tensors; fp16 and q4f16
// declare float16 activations, which the runner feeds and reads in
// float16 (the KV cache stays float16 between steps; logits are widened
// to float32 for sampling).
const (
	DTypeAuto  DType = "auto"
	DTypeFP32  DType = "fp32"
	DTypeFP16  DType = "fp16"
	DTypeQ8    DType = "q8"
	DTypeInt8  DType = "int8"
	DTypeUint8 DType = "uint8"
	DTypeQ4    DType = "q4"
	DTypeQ4F16 DType = "q4f16"
	DTypeBNB4  DType = "bnb4"
)

// dtypeSuffix maps a variant to its file-name suffix (transformers.js's
// DEFAULT_DTYPE_SUFFIX_MAPPING).
var dtypeSuffix = map[DType]string{
	DTypeFP32: "", DTypeFP16: "_fp16", DTypeQ8: "_quantized", DTypeInt8: "_int8", DTypeUint8: "_uint8",
	DTypeQ4: "_q4", DTypeQ4F16: "_q4f16", DTypeBNB4: "_bnb4",
}

// autoOrder is the order DTypeAuto tries the variants present on the CPU:
// float32 graphs first (ONNX Runtime's CPU kernels are float32; float16
// ops there run through inserted Casts), then the weight-quantized ones,
// then the float16 ones.
var autoOrder = []DType{DTypeFP32, DTypeQ8, DTypeInt8, DTypeUint8, DTypeQ4, DTypeBNB4, DTypeFP16, DTypeQ4F16}

// autoOrderCUDA is the order DTypeAuto tries on a CUDA device: float16
// first, as transformers.js does on GPUs.
var autoOrderCUDA = []DType{DTypeFP16, DTypeQ4F16, DTypeFP32, DTypeQ8, DTypeInt8, DTypeUint8, DTypeQ4, DTypeBNB4}

// ErrDType reports an unknown or absent dtype variant.
var ErrDType = errors.New("models: dtype variant")

// ParseDType reads a --dtype value; "" is DTypeAuto.
func ParseDType(s string) (DType, error) {
	d := DType(strings.ToLower(strings.TrimSpace(s)))
	if d == "" {
		return DTypeAuto, nil
	}
	if _, ok := dtypeSuffix[d]; ok || d == DTypeAuto {
		return d, nil
	}
	return "", fmt.Errorf("%w: unknown %q (want auto, fp32, fp16, q8, int8, uint8, q4, q4f16 or bnb4)", ErrDType, s)
}

// withVariant returns files with the three graphs renamed to dtype's
// variant, resolved against the folder dir: DTypeAuto picks the first of
// autoOrder (autoOrderCUDA when cuda) whose three graphs are all present
// (fp32 when none is, so the missing-file error names the plain graphs).
// A requested variant that is absent is an error wrapping ErrDType that
// lists the variants present.
func withVariant(dir string, files Files, dtype DType, cuda bool) (Files, error) {
	variant := func(d DType) Files {
		f := files
		for _, p := range []*string{&f.VisionEncoder, &f.EmbedTokens, &f.Decoder} {
			*p = strings.TrimSuffix(*p, ".onnx") + dtypeSuffix[d] + ".onnx"
		}
		return f
	}
	present := func(f Files) bool {
		for _, p := range []string{f.VisionEncoder, f.EmbedTokens, f.Decoder} {
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
				return false
			}
		}
		return true
	}
	if dtype == "" || dtype == DTypeAuto {
		order := autoOrder
		if cuda {
			order = autoOrderCUDA
		}
		for _, d := range order {
			if f := variant(d); present(f) {
				return f, nil
			}
		}
		return files, nil
	}
	if _, ok := dtypeSuffix[dtype]; !ok {
		return files, fmt.Errorf("%w: unknown %q", ErrDType, dtype)
	}
	f := variant(dtype)
	if !present(f) {
		var have []string
		for _, d := range []DType{DTypeFP32, DTypeFP16, DTypeQ8, DTypeInt8, DTypeUint8, DTypeQ4, DTypeQ4F16, DTypeBNB4} {
			if present(variant(d)) {
				have = append(have, string(d))
			}
		}
		return files, fmt.Errorf("%w: %s is absent (%s and its two siblings); present: %v", ErrDType, dtype, f.Decoder, have)
	}
	return f, nil
}

// String returns the variant's name ("auto" for the zero value).
func (d DType) String() string {
	if d == "" {
		return string(DTypeAuto)
	}
	return string(d)
}

// Set parses a flag value (ParseDType), so a DType is a flag.Value.
func (d *DType) Set(s string) error {
	v, err := ParseDType(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// DTypeUsage is the help text of a --dtype flag.
const DTypeUsage = "graph dtype variant: auto, fp32, fp16, q8, int8, uint8, q4, q4f16 or bnb4 (auto: fp16 with --device cuda, else fp32)"
