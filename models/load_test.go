package models_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/models"
)

// TestLoadRejectsBrokenBundles breaks one thing per case in a fresh bundle
// and checks Load names it with the right typed error.
func TestLoadRejectsBrokenBundles(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T, b *models.Bundle)
		want   error
	}{
		{"missing-manifest-and-config", func(t *testing.T, b *models.Bundle) {
			rm(t, filepath.Join(b.Dir, models.ManifestName))
			rm(t, filepath.Join(b.Dir, models.HFConfigName))
		}, models.ErrMissingFile},
		{"missing-decoder", func(t *testing.T, b *models.Bundle) { rm(t, b.DecoderPath()) }, models.ErrMissingFile},
		{"missing-weights", func(t *testing.T, b *models.Bundle) { rm(t, b.WeightsPath()) }, models.ErrMissingFile},
		{"truncated-onnx", func(t *testing.T, b *models.Bundle) { truncate(t, b.DecoderPath(), 1000) }, models.ErrBadONNX},
		{"truncated-weights", func(t *testing.T, b *models.Bundle) { truncate(t, b.WeightsPath(), 4096) }, models.ErrBadWeights},
		{"truncated-onnx-data", func(t *testing.T, b *models.Bundle) { truncate(t, b.DecoderPath()+"_data", 4096) }, models.ErrBadWeights},
		{"missing-onnx-data", func(t *testing.T, b *models.Bundle) { rm(t, b.VisionEncoderPath()+"_data") }, models.ErrMissingFile},
		{"manifest-unknown-field", func(t *testing.T, b *models.Bundle) { editManifest(t, b, `"name"`, `"nmae"`) }, models.ErrBadManifest},
		{"manifest-bad-role", func(t *testing.T, b *models.Bundle) { editManifest(t, b, `"vqa"`, `"chat"`) }, models.ErrBadManifest},
		{"manifest-not-json", func(t *testing.T, b *models.Bundle) { write(t, filepath.Join(b.Dir, models.ManifestName), "{") }, models.ErrBadManifest},
		{"config-invalid", func(t *testing.T, b *models.Bundle) {
			editManifest(t, b, `"num_key_value_heads": 2`, `"num_key_value_heads": 3`)
		}, models.ErrBadConfig},
		{"vocab-mismatch", func(t *testing.T, b *models.Bundle) { editManifest(t, b, `"vocab_size": 256`, `"vocab_size": 300`) }, models.ErrSignature},
		{"layers-mismatch", func(t *testing.T, b *models.Bundle) {
			editManifest(t, b, `"num_hidden_layers": 4`, `"num_hidden_layers": 3`)
		}, models.ErrSignature},
		{"role-mismatch", func(t *testing.T, b *models.Bundle) { editManifest(t, b, `"vqa",`+"\n    \"generator\"", `"reward"`) }, models.ErrSignature},
		{"token-out-of-vocab", func(t *testing.T, b *models.Bundle) {
			editManifest(t, b, `"image_token_id": 255`, `"image_token_id": 999`)
		}, models.ErrBadManifest},
		{"escaping-path", func(t *testing.T, b *models.Bundle) { editManifest(t, b, `"tokenizer.json"`, `"../tokenizer.json"`) }, models.ErrBadManifest},
	}
	src := exportBundle(t, nil, 1)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := copyBundle(t, src)
			tc.break_(t, b)
			_, err := models.Load(context.Background(), b.Dir)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Load error = %v, want %v", err, tc.want)
			}
			var be *models.BundleError
			if !errors.As(err, &be) || be.Dir != b.Dir {
				t.Fatalf("error %v is not a *BundleError for %s", err, b.Dir)
			}
		})
	}
}

func TestExportRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	small := models.DefaultConfig(10)
	badHeads := models.DefaultConfig(0)
	badHeads.NumHeads = 3
	tests := []struct {
		name string
		cfg  models.ArchConfig
		opts models.ExportOptions
		want error
	}{
		{"no-tokenizer", models.DefaultConfig(0), models.ExportOptions{}, models.ErrMissingFile},
		{"tokenizer-not-json", models.DefaultConfig(0), models.ExportOptions{Tokenizer: "load_test.go"}, models.ErrBadTokenizer},
		{"vocab-too-small", small, models.ExportOptions{Tokenizer: testTokenizer}, models.ErrBadConfig},
		{"bad-heads", badHeads, models.ExportOptions{Tokenizer: testTokenizer}, models.ErrBadConfig},
		{"negative-max-pixels", models.DefaultConfig(0), models.ExportOptions{Tokenizer: testTokenizer, MaxPixels: -1}, models.ErrBadConfig},
		{"weights-missing", models.DefaultConfig(0), models.ExportOptions{Tokenizer: testTokenizer, Weights: "nope.safetensors"}, models.ErrBadWeights},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := models.Export(ctx, t.TempDir(), tc.cfg, tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Export error = %v, want %v", err, tc.want)
			}
		})
	}
}

func rm(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string, n int64) {
	t.Helper()
	if err := os.Truncate(path, n); err != nil {
		t.Fatal(err)
	}
}

func editManifest(t *testing.T, b *models.Bundle, old, repl string) {
	t.Helper()
	path := filepath.Join(b.Dir, models.ManifestName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("manifest has no %q:\n%s", old, data)
	}
	write(t, path, strings.Replace(string(data), old, repl, 1))
}

func copyBundle(t *testing.T, b *models.Bundle) *models.Bundle {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(b.Dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(b.Dir, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return &models.Bundle{Dir: dst, Manifest: b.Manifest}
}
