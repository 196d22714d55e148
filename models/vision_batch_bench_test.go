package models

import (
	"context"
	"fmt"
	"image"
	"testing"

	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/runtime"
)

// BenchmarkVisionBatch compares, for 16 same-size images, one vision
// encoder call per image (what ImageFeatures does) with one concatenated
// call (legal: the encoder masks attention across images, but its cost
// grows with the square of the total patches), on the default bundle, at
// the serving mix's small and large grids.
//
//	go test ./models -run '^$' -bench VisionBatch
func BenchmarkVisionBatch(b *testing.B) {
	ctx := context.Background()
	v, err := Open(ctx, "default/vqa", VLMOptions{Device: runtime.CPU})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	for _, side := range []int{56, 112, 224} {
		img := image.NewGray(image.Rect(0, 0, side, side))
		for k := range img.Pix {
			img.Pix[k] = uint8(k * 7)
		}
		px, err := v.ProcessImage(img)
		if err != nil {
			b.Fatal(err)
		}
		imgs := make([]*preprocessing.Pixels, 16)
		for i := range imgs {
			imgs[i] = px
		}
		b.Run(fmt.Sprintf("%dx%d/per-image", side, side), func(b *testing.B) {
			for b.Loop() {
				for _, p := range imgs {
					if _, err := v.encodeImages(ctx, []*preprocessing.Pixels{p}); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Run(fmt.Sprintf("%dx%d/concatenated", side, side), func(b *testing.B) {
			for b.Loop() {
				if _, err := v.encodeImages(ctx, imgs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
