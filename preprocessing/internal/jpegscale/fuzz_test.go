package jpegscale

import (
	"bytes"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeScaled holds the decoder to image/jpeg on arbitrary bytes:
// where image/jpeg fails, every scale fails with the same error; where
// it succeeds, every scale the header allows succeeds and each stored
// channel is within one level of the full-size decode's box mean. Run
// with
//
//	go test -run '^$' -fuzz FuzzDecodeScaled -fuzztime 20s ./preprocessing/internal/jpegscale/
func FuzzDecodeScaled(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.jpeg")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := jpeg.DecodeConfig(bytes.NewReader(data)); err != nil || c.Width*c.Height > 1<<18 {
			return
		}
		_, werr := jpeg.Decode(bytes.NewReader(data))
		cfg, cerr := DecodeConfig(bytes.NewReader(data))
		if cerr != nil {
			t.Fatalf("DecodeConfig: %v, image/jpeg read the header", cerr)
		}
		var full [][]int
		var w, h int
		if werr == nil {
			var err error
			if full, w, h, err = storedPlanes(t, data, 1); err != nil {
				t.Fatalf("scale 1: %v, image/jpeg decodes it", err)
			}
		}
		for _, k := range []int{2, 4, 8} {
			if !cfg.Supports(k) {
				continue
			}
			got, _, _, err := storedPlanes(t, data, k)
			if werr != nil {
				if err == nil || err.Error() != werr.Error() {
					t.Fatalf("scale %d: %v, image/jpeg says %v", k, err, werr)
				}
				continue
			}
			if err != nil {
				t.Fatalf("scale %d: %v, image/jpeg decodes it", k, err)
			}
			compare(t, "stored", got, full, w, h, k, 1)
		}
	})
}
