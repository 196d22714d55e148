package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/medgr2/medgr2/preprocessing"
)

// preprocessReport is one line of `medgr2 preprocess` output.
type preprocessReport struct {
	File        string             `json:"file"`
	Info        preprocessing.Info `json:"info"`
	GridTHW     [3]int64           `json:"grid_thw"`
	NumPatches  int                `json:"num_patches"`
	PatchDim    int                `json:"patch_dim"`
	ImageTokens int                `json:"image_tokens"`
	Rendered    string             `json:"rendered,omitempty"`
}

// runPreprocess decodes images (PNG, JPEG, GIF, BMP, TIFF, WebP, DICOM) and
// reports how they are windowed and patched for the vision encoder, one
// JSON object per line; --out writes the 8-bit rendering as PNG.
func runPreprocess(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("preprocess", flag.ContinueOnError)
	fs.SetOutput(stderr)
	frame := fs.Int("frame", 0, "DICOM frame number, 1-based (0 = middle frame)")
	window := fs.String("window", "", "DICOM window override as CENTER,WIDTH (e.g. -600,1500 for lung)")
	maxBytes := fs.Int64("max-bytes", preprocessing.DefaultMaxBytes, "largest encoded image accepted, bytes")
	maxPixels := fs.Int64("max-pixels", preprocessing.DefaultMaxPixels, "largest pixel count accepted (DICOM: rows×columns×frames)")
	cfgPath := fs.String("config", "", "Hugging Face preprocessor_config.json (default: Qwen2-VL defaults)")
	resizer := fs.String("resizer", "", "pillow-bicubic (default), xdraw-catmullrom or nfnt-bicubic")
	outDir := fs.String("out", "", "folder to write each decoded 8-bit image as PNG")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return usageError("preprocess: no image files given")
	}
	opts := preprocessing.Options{Frame: *frame, Limits: preprocessing.Limits{MaxBytes: *maxBytes, MaxPixels: *maxPixels}}
	if *window != "" {
		w, err := parseWindow(*window)
		if err != nil {
			return err
		}
		opts.Window = w
	}
	cfg, err := loadPreprocessConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *resizer != "" {
		cfg.Resizer = *resizer
	}
	enc := json.NewEncoder(stdout)
	for _, path := range fs.Args() {
		if err := ctx.Err(); err != nil {
			return err
		}
		rep, err := preprocessOne(path, opts, cfg, *outDir)
		if err != nil {
			return err
		}
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	return nil
}

// preprocessOne decodes and processes one file.
func preprocessOne(path string, opts preprocessing.Options, cfg preprocessing.Config, outDir string) (preprocessReport, error) {
	img, info, err := preprocessing.DecodeFileWith(path, opts)
	if err != nil {
		return preprocessReport{}, err
	}
	px, err := cfg.Process(img)
	if err != nil {
		return preprocessReport{}, fmt.Errorf("%s: %w", path, err)
	}
	rep := preprocessReport{File: path, Info: info, GridTHW: px.GridTHW, NumPatches: px.NumPatches,
		PatchDim: px.PatchDim, ImageTokens: px.ImageTokens()}
	if outDir != "" {
		rep.Rendered = filepath.Join(outDir, strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))+".png")
		f, err := os.Create(rep.Rendered)
		if err != nil {
			return preprocessReport{}, fmt.Errorf("preprocess: %w", err)
		}
		err = png.Encode(f, img)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return preprocessReport{}, fmt.Errorf("preprocess: write %s: %w", rep.Rendered, err)
		}
	}
	return rep, nil
}

// parseWindow parses CENTER,WIDTH.
func parseWindow(s string) (preprocessing.Window, error) {
	c, w, ok := strings.Cut(s, ",")
	center, err1 := strconv.ParseFloat(strings.TrimSpace(c), 64)
	width, err2 := strconv.ParseFloat(strings.TrimSpace(w), 64)
	if !ok || errors.Join(err1, err2) != nil || width <= 0 {
		return preprocessing.Window{}, usageError(fmt.Sprintf("preprocess: --window %q: want CENTER,WIDTH with WIDTH > 0", s))
	}
	return preprocessing.Window{Center: center, Width: width}, nil
}

// loadPreprocessConfig reads a preprocessor_config.json, or returns the
// defaults for an empty path.
func loadPreprocessConfig(path string) (preprocessing.Config, error) {
	if path == "" {
		return preprocessing.DefaultConfig(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return preprocessing.Config{}, fmt.Errorf("preprocess: %w", err)
	}
	var cfg preprocessing.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return preprocessing.Config{}, fmt.Errorf("preprocess: %s: %w", path, err)
	}
	return cfg, nil
}
