package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportDTypes: export --from … --dtype writes the fp16 and q4f16
// variants beside the fp32 graphs and vqa answers with each; a dtype
// export cannot write is a usage error.
func TestExportDTypes(t *testing.T) {
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "vqa")
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"export", "--from", testBundle(t), "--out", out, "--dtype", "fp16,q4f16"}, &stdout, &stderr); err != nil {
		t.Fatalf("export: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "dtypes fp32, fp16, q4f16") {
		t.Errorf("export output %q does not list the variants", stdout.String())
	}
	for _, g := range []string{"vision_encoder", "embed_tokens", "decoder_model_merged"} {
		for _, suffix := range []string{"_fp16.onnx", "_fp16.onnx_data", "_q4f16.onnx", "_q4f16.onnx_data"} {
			if _, err := os.Stat(filepath.Join(out, "onnx", g+suffix)); err != nil {
				t.Error(err)
			}
		}
	}
	for _, d := range []string{"fp16", "q4f16"} {
		stdout.Reset()
		args := []string{"vqa", "--model", out, "--device", "cpu", "--dtype", d, "--image", testKnee,
			"--question", "Which modality?", "--option", "CT", "--option", "MRI"}
		if err := run(ctx, args, &stdout, &stderr); err != nil {
			t.Fatalf("vqa --dtype %s: %v\n%s", d, err, stderr.String())
		}
		if !strings.Contains(stdout.String(), "answer:") {
			t.Errorf("vqa --dtype %s printed %q", d, stdout.String())
		}
	}
	err := run(ctx, []string{"export", "--from", testBundle(t), "--out", t.TempDir(), "--dtype", "int8"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "export writes fp16, q4 and q4f16") {
		t.Errorf("export --dtype int8 = %v, want a usage error", err)
	}
}
