package preprocessing

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"runtime"
	"testing"
	"time"

	xdraw "golang.org/x/image/draw"
)

// upscaled decodes a real image and scales it to w×h with CatmullRom.
func upscaled(b *testing.B, path string, w, h int) image.Image {
	b.Helper()
	img, _, err := DecodeFile(path, Limits{})
	if err != nil {
		b.Fatal(err)
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	xdraw.CatmullRom.Scale(dst, dst.Bounds(), img, img.Bounds(), xdraw.Src, nil)
	return dst
}

// benchInputs builds the three benchmark inputs from real data: a 512×512
// PNG (breast ultrasound), a 2048×2048 JPEG (blood smear) and a 512×512
// 16-bit CT DICOM (the enhanced CT fixture's middle frame, each pixel
// repeated 4×4, with its real rescale and window).
func benchInputs(b *testing.B) map[string][]byte {
	b.Helper()
	var pngBuf, jpgBuf bytes.Buffer
	if err := png.Encode(&pngBuf, upscaled(b, sharedData(b, "busi/images/benign_204.png"), 512, 512)); err != nil {
		b.Fatal(err)
	}
	if err := jpeg.Encode(&jpgBuf, upscaled(b, sharedData(b, "bccd/images/BloodImage_00000.jpg"), 2048, 2048), &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	path := "testdata/ct_multiframe.dcm"
	small := rawFrameB(b, path)
	px := make([]int, 512*512)
	for y := range 512 {
		for x := range 512 {
			px[y*512+x] = small[(y/4)*128+x/4]
		}
	}
	dcm := buildDICOM(b, dcmSpec{rows: 512, cols: 512, bitsAlloc: 16, modality: "CT", intercept: "-1024", slope: "1",
		center: "49", width: "102", pixels: [][]int{px}})
	return map[string][]byte{"png512": pngBuf.Bytes(), "jpeg2048": jpgBuf.Bytes(), "dicom512x16bit": dcm}
}

// rawFrameB reads the middle frame of a 128×128 fixture as ints.
func rawFrameB(b *testing.B, path string) []int {
	b.Helper()
	_, info, err := DecodeFile(path, Limits{})
	if err != nil || info.Width != 128 {
		b.Fatalf("fixture %s: %v %+v", path, err, info)
	}
	return rawFrame(b, path, info.Frame-1)
}

// BenchmarkDecodeProcess measures decode + resize + patchify per image.
func BenchmarkDecodeProcess(b *testing.B) {
	inputs := benchInputs(b)
	for _, name := range []string{"png512", "jpeg2048", "dicom512x16bit"} {
		for _, rs := range []string{ResizerPillow, ResizerCatmullRom, ResizerNfntBicubic} {
			cfg := DefaultConfig()
			cfg.Resizer = rs
			data := inputs[name]
			b.Run(name+"/"+rs, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					img, _, err := Decode(data, Limits{})
					if err != nil {
						b.Fatal(err)
					}
					if _, err := cfg.Process(img); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkResize measures the resizers alone on real-sized inputs at
// Qwen2-VL's default target for each: a 2048×2048 RGB image to 980×980,
// a BCCD 640×480 RGB photograph to 644×476 (the serving mix's largest
// image) and a 28×28 greyscale X-ray to 56×56.
func BenchmarkResize(b *testing.B) {
	bccd, _, err := DecodeFile(sharedData(b, "bccd/images/BloodImage_00000.jpg"), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	mnist, _, err := DecodeFile(sharedData(b, "pneumoniamnist/train/pneumoniamnist_train_00000.png"), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	inputs := []struct {
		name string
		src  image.Image
		w, h int
	}{
		{"2048to980", toRGB(upscaled(b, sharedData(b, "bccd/images/BloodImage_00000.jpg"), 2048, 2048)), 980, 980},
		{"640x480to644x476", toRGB(bccd), 644, 476},
		{"gray28to56", toRGB(mnist), 56, 56},
	}
	for _, in := range inputs {
		for _, rs := range []string{ResizerPillow, ResizerCatmullRom, ResizerNfntBicubic} {
			b.Run(in.name+"/"+rs, func(b *testing.B) {
				for b.Loop() {
					resizeTo(in.src, in.w, in.h, rs)
				}
			})
		}
	}
}

// BenchmarkPatchify measures rescale + normalise + patch layout alone.
func BenchmarkPatchify(b *testing.B) {
	img := randomRGBA(980, 980, 1)
	cfg := DefaultConfig()
	for b.Loop() {
		cfg.patchify(img, 980, 980)
	}
}

// BenchmarkReducedJPEG measures decode + Process of a 3000×2000 JPEG
// (a real BCCD photograph scaled up, 4:2:0, quality 90) with the full
// decode and with Options.ReduceFor, at three max_pixels: 448² (the
// default bundles'; decoded at 1/2), 224² (1/4) and 56² (1/8). Each
// "ratio" sub-benchmark runs both, alternating, and reports reduced/full
// time and allocated bytes, so the ratio comes from one process under the
// same load:
//
//	go test ./preprocessing -run '^$' -bench ReducedJPEG -benchtime 10x
func BenchmarkReducedJPEG(b *testing.B) {
	data := upscaledJPEG(b, sharedData(b, "bccd/images/BloodImage_00000.jpg"), 3000, 2000, 90)
	run := func(b *testing.B, cfg *Config, reduce bool) {
		opts := Options{}
		if reduce {
			opts.ReduceFor = cfg
		}
		img, _, err := DecodeWith(data, opts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cfg.Process(img); err != nil {
			b.Fatal(err)
		}
	}
	for _, side := range []int{448, 224, 56} {
		cfg := withMaxPixels(side * side)
		for _, reduce := range []bool{false, true} {
			name := fmt.Sprintf("%d²/full", side)
			if reduce {
				name = fmt.Sprintf("%d²/reduced", side)
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					run(b, cfg, reduce)
				}
			})
		}
		b.Run(fmt.Sprintf("%d²/ratio", side), func(b *testing.B) {
			var took [2]time.Duration
			var alloc [2]uint64
			var ms runtime.MemStats
			for b.Loop() {
				for i, reduce := range []bool{false, true} {
					runtime.ReadMemStats(&ms)
					a, t := ms.TotalAlloc, time.Now()
					run(b, cfg, reduce)
					took[i] += time.Since(t)
					runtime.ReadMemStats(&ms)
					alloc[i] += ms.TotalAlloc - a
				}
			}
			b.ReportMetric(float64(took[1])/float64(took[0]), "time-reduced/full")
			b.ReportMetric(float64(alloc[1])/float64(alloc[0]), "bytes-reduced/full")
		})
	}
}
