package jpegscale

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"testing"
	"time"
)

// largeJPEG encodes a real BCCD photograph scaled to 3000×2000 (4:2:0,
// quality 90), the size of a phone or camera photo.
func largeJPEG(b *testing.B) []byte {
	b.Helper()
	img := resized(decodeFile(b, sharedData(b, "bccd/images/BloodImage_00000.jpg")), 3000, 2000)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkDecode compares image/jpeg with this decoder at each scale on
// a 3000×2000 photograph; "ratio" runs all five in turn in each
// iteration and reports each scale's time over image/jpeg's:
//
//	go test ./preprocessing/internal/jpegscale -run '^$' -bench Decode -benchtime 10x
func BenchmarkDecode(b *testing.B) {
	data := largeJPEG(b)
	b.Run("image-jpeg", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
	scales := []int{1, 2, 4, 8}
	for _, k := range scales {
		b.Run(fmt.Sprintf("scale%d", k), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(bytes.NewReader(data), k); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("ratio", func(b *testing.B) {
		var std time.Duration
		took := make([]time.Duration, len(scales))
		for b.Loop() {
			t := time.Now()
			if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
			std += time.Since(t)
			for i, k := range scales {
				t := time.Now()
				if _, err := Decode(bytes.NewReader(data), k); err != nil {
					b.Fatal(err)
				}
				took[i] += time.Since(t)
			}
		}
		for i, k := range scales {
			b.ReportMetric(float64(took[i])/float64(std), fmt.Sprintf("scale%d/image-jpeg", k))
		}
	})
}
