package preprocessing

import (
	"errors"
	"image"
	"os"
	"path/filepath"
	"testing"
)

// fuzzLimits keep each fuzz iteration cheap while still exercising the
// limit checks.
var fuzzLimits = Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 18}

// seedFiles returns the real files the fuzz targets start from.
func seedFiles(tb testing.TB, dicomOnly bool) [][]byte {
	tb.Helper()
	paths, err := filepath.Glob("testdata/*.dcm")
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no DICOM fixtures in testdata: %v", err)
	}
	if !dicomOnly {
		webp, _ := filepath.Glob("testdata/*.webp")
		paths = append(paths, webp...)
		paths = append(paths,
			sharedData(tb, "pneumoniamnist/train/pneumoniamnist_train_00000.png"),
			sharedData(tb, "bccd/images/BloodImage_00000.jpg"),
			sharedData(tb, "omnimedvqa-real/"+firstImage(tb)),
		)
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// firstImage returns one image path from the real OmniMedVQA folder.
func firstImage(tb testing.TB) string {
	tb.Helper()
	matches, _ := filepath.Glob(filepath.Join("..", "..", "shared", "data", "omnimedvqa-real", "*", "*", "*.*"))
	for _, m := range matches {
		if ext := filepath.Ext(m); ext == ".png" || ext == ".jpg" || ext == ".jpeg" {
			rel, _ := filepath.Rel(filepath.Join("..", "..", "shared", "data", "omnimedvqa-real"), m)
			return rel
		}
	}
	tb.Fatal("no image under ../shared/data/omnimedvqa-real")
	return ""
}

// checkDecodeResult asserts the contract every decode obeys: an image whose
// bounds match Info, or a typed, printable error.
func checkDecodeResult(t *testing.T, decode func([]byte, Options) (image.Image, Info, error), data []byte, opts Options) {
	img, info, err := decode(data, opts)
	if err != nil {
		var fe FormatError
		typed := errors.As(err, &fe) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnsupported) ||
			errors.Is(err, ErrEmpty) || errors.Is(err, ErrFrame)
		if !typed || err.Error() == "" {
			t.Fatalf("untyped or empty error %T: %v", err, err)
		}
		return
	}
	if img == nil || img.Bounds().Dx() != info.Width || img.Bounds().Dy() != info.Height {
		t.Fatalf("image/info mismatch: %v vs %+v", img, info)
	}
	if int64(info.Width)*int64(info.Height) <= 1<<16 {
		if _, err := DefaultConfig().Process(img); err != nil && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("Process on decoded image: %v", err)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to Decode (every format). Run with
//
//	go test -run '^$' -fuzz FuzzDecode$ -fuzztime 20s ./preprocessing/
func FuzzDecode(f *testing.F) {
	for _, b := range seedFiles(f, false) {
		f.Add(b)
	}
	f.Add(pngHeader(100000, 100000))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeResult(t, DecodeWith, data, Options{Limits: fuzzLimits})
	})
}

// FuzzDecodeDICOM feeds arbitrary bytes and frame numbers to the DICOM
// path, seeded with the real DICOM fixtures and synthetic variants. Run with
//
//	go test -run '^$' -fuzz FuzzDecodeDICOM -fuzztime 20s ./preprocessing/
func FuzzDecodeDICOM(f *testing.F) {
	for _, b := range seedFiles(f, true) {
		f.Add(b, 0)
	}
	f.Add(buildDICOM(f, dcmSpec{rows: 4, cols: 4, frames: 2, bitsAlloc: 16, bitsStored: 12, signed: true, modality: "CT",
		intercept: "-1024", pixels: [][]int{ramp(16, 0, 100), ramp(16, 5, 100)}}), 2)
	f.Add(buildDICOM(f, dcmSpec{rows: 2, cols: 2, bitsAlloc: 8, samples: 3, planar: 1, photometric: "RGB", pixels: [][]int{ramp(12, 0, 20)}}), 1)
	f.Fuzz(func(t *testing.T, data []byte, frame int) {
		if frame < -1 || frame > 3 {
			frame %= 4
		}
		checkDecodeResult(t, DecodeDICOM, data, Options{Limits: fuzzLimits, Frame: frame})
	})
}

// FuzzDecodeReducedJPEG feeds arbitrary bytes to Decode with
// Options.ReduceFor set for a 56²-pixel target, so that JPEGs of a few
// hundred pixels already decode at 1/2, 1/4 or 1/8 scale
// (internal/jpegscale). Seeded with a real BCCD photograph and the
// decoder's fixtures (every subsampling, progressive, restarts, grey,
// CMYK). Run with
//
//	go test -run '^$' -fuzz FuzzDecodeReducedJPEG -fuzztime 20s ./preprocessing/
func FuzzDecodeReducedJPEG(f *testing.F) {
	paths, _ := filepath.Glob("internal/jpegscale/testdata/*.jpeg")
	paths = append(paths, sharedData(f, "bccd/images/BloodImage_00000.jpg"))
	for _, p := range paths {
		f.Add(readFile(f, p))
	}
	cfg := withMaxPixels(56 * 56)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeResult(t, DecodeWith, data, Options{Limits: fuzzLimits, ReduceFor: cfg})
	})
}
