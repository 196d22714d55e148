package models_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
)

func TestParseDType(t *testing.T) {
	cases := []struct {
		in   string
		want models.DType
		err  bool
	}{
		{"", models.DTypeAuto, false}, {"auto", models.DTypeAuto, false}, {"FP32", models.DTypeFP32, false},
		{"q8", models.DTypeQ8, false}, {"q4f16", models.DTypeQ4F16, false}, {"bnb4", models.DTypeBNB4, false},
		{"fp64", "", true}, {"quantized", "", true},
	}
	for _, c := range cases {
		got, err := models.ParseDType(c.in)
		if got != c.want || (err != nil) != c.err || (err != nil && !errors.Is(err, models.ErrDType)) {
			t.Errorf("ParseDType(%q) = %q, %v", c.in, got, err)
		}
	}
}

// addVariant copies the three graphs of b to their names for suffix (the
// copies read the same .onnx_data), as a folder with several dtype
// variants ships them.
func addVariant(t *testing.T, b *models.Bundle, suffix string) {
	t.Helper()
	for _, g := range []string{b.VisionEncoderPath(), b.EmbedTokensPath(), b.DecoderPath()} {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		write(t, strings.TrimSuffix(g, ".onnx")+suffix+".onnx", string(data))
	}
}

// TestDTypeVariants picks dtype variants of one folder: a requested one,
// auto without fp32 graphs, and an absent one (an error listing those
// present).
func TestDTypeVariants(t *testing.T) {
	ctx := context.Background()
	src := exportVQABundle(t, 41)
	cases := []struct {
		name    string
		prepare func(t *testing.T, b *models.Bundle)
		dtype   models.DType
		decoder string // the decoder file the bundle uses
		err     error
	}{
		{"auto takes fp32", func(t *testing.T, b *models.Bundle) { addVariant(t, b, "_q4") }, models.DTypeAuto, "onnx/decoder_model_merged.onnx", nil},
		{"requested q8", func(t *testing.T, b *models.Bundle) { addVariant(t, b, "_quantized") }, models.DTypeQ8, "onnx/decoder_model_merged_quantized.onnx", nil},
		{"auto without fp32 takes q4", func(t *testing.T, b *models.Bundle) {
			addVariant(t, b, "_q4")
			for _, g := range []string{b.VisionEncoderPath(), b.EmbedTokensPath(), b.DecoderPath()} {
				rm(t, g)
			}
		}, models.DTypeAuto, "onnx/decoder_model_merged_q4.onnx", nil},
		{"absent fp16", func(t *testing.T, b *models.Bundle) { addVariant(t, b, "_int8") }, models.DTypeFP16, "", models.ErrDType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := copyBundle(t, src)
			c.prepare(t, b)
			got, err := models.LoadDType(ctx, b.Dir, c.dtype)
			if c.err != nil {
				if !errors.Is(err, c.err) || !strings.Contains(err.Error(), "int8") {
					t.Fatalf("LoadDType = %v, want %v listing the variants present", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Manifest.Files.Decoder != c.decoder {
				t.Fatalf("decoder %s, want %s", got.Manifest.Files.Decoder, c.decoder)
			}
			v, err := models.Open(ctx, b.Dir, models.VLMOptions{Device: runtime.CPU, DType: c.dtype})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			if _, err := v.Answer(ctx, []models.VQARequest{{Question: "Which modality?", Options: []string{"CT", "MRI"}}}, models.ReasonOptions{}); err != nil {
				t.Fatal(err)
			}
			if filepath.Base(v.Bundle().DecoderPath()) != filepath.Base(c.decoder) {
				t.Fatalf("opened %s", v.Bundle().DecoderPath())
			}
		})
	}
}
