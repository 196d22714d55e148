package preprocessing

import (
	"bytes"
	"compress/flate"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// expectedGray applies the DICOM linear VOI function (PS3.3 C.11.2.1.2.1)
// written out independently of Window.apply.
func expectedGray(x, c, w float64, invert bool) uint8 {
	var y float64
	switch {
	case x <= c-0.5-(w-1)/2:
		y = 0
	case x > c-0.5+(w-1)/2:
		y = 255
	default:
		y = ((x-(c-0.5))/(w-1) + 0.5) * 255
	}
	g := uint8(math.Round(y))
	if invert {
		g = 255 - g
	}
	return g
}

// TestDICOMFixturesWindow decodes the real fixtures and checks every pixel
// against the raw stored values read back with the dicom library and the
// window formula above.
func TestDICOMFixturesWindow(t *testing.T) {
	tests := []struct {
		file       string
		modality   string
		frames     int
		center     float64
		width      float64
		slope      float64
		intercept  float64
		invert     bool
		source     string
		frameIndex int
	}{
		{"pet_acrin_flt_breast.dcm", "PT", 1, 30157, 54282, 9.12329, 0, false, WindowFromFile, 0},
		{"mr_prostate.dcm", "MR", 1, 378, 465, 7.8393163681, 0, false, WindowFromFile, 0},
		{"cr_chest_monochrome1.dcm", "CR", 1, 511, 1023, 1, 0, true, WindowFromFile, 0},
		// Enhanced CT: rescale and window live in the functional groups.
		{"ct_multiframe.dcm", "CT", 2, 49, 102, 1, -1024, false, WindowFromFile, 1},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := "testdata/" + tt.file
			img, info, err := DecodeFile(path, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Modality != tt.modality || info.Frames != tt.frames || info.Frame != tt.frameIndex+1 ||
				info.Window != (Window{tt.center, tt.width}) || info.WindowSource != tt.source || info.Inverted != tt.invert {
				t.Fatalf("info %+v", info)
			}
			if math.Abs(info.RescaleSlope-tt.slope) > 1e-9 || info.RescaleIntercept != tt.intercept {
				t.Fatalf("rescale %v/%v", info.RescaleSlope, info.RescaleIntercept)
			}
			raw := rawFrame(t, path, tt.frameIndex)
			g, ok := img.(*image.Gray)
			if !ok || len(g.Pix) != len(raw) {
				t.Fatalf("got %T with %d pixels, want *image.Gray with %d", img, len(g.Pix), len(raw))
			}
			var distinct [256]bool
			for i, r := range raw {
				want := expectedGray(float64(r)*tt.slope+tt.intercept, tt.center, tt.width, tt.invert)
				if g.Pix[i] != want {
					t.Fatalf("pixel %d: raw %d → %d, want %d", i, r, g.Pix[i], want)
				}
				distinct[want] = true
			}
			n := 0
			for _, d := range distinct {
				if d {
					n++
				}
			}
			if n < 16 { // a window that clips everything would pass trivially
				t.Errorf("only %d distinct grey levels", n)
			}
		})
	}
}

// rawFrame reads frame index of a native DICOM file with the dicom library.
func rawFrame(t testing.TB, path string, index int) []int {
	t.Helper()
	ds, err := dicom.ParseFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	el, err := ds.FindElementByTag(tag.PixelData)
	if err != nil {
		t.Fatal(err)
	}
	nf := dicom.MustGetPixelDataInfo(el.Value).Frames[index].NativeData
	var out []int
	for y := 0; y < nf.Rows(); y++ {
		for x := 0; x < nf.Cols(); x++ {
			p, err := nf.GetPixel(x, y)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p[0])
		}
	}
	return out
}

func TestDICOMDeflated(t *testing.T) {
	img, info, err := DecodeFile("testdata/deflated.dcm", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if info.TransferSyntax != tsDeflatedLE || info.WindowSource != WindowFromFullRange || img.Bounds().Dx() != 512 {
		t.Errorf("info %+v", info)
	}
}

func TestDICOMSynthetic(t *testing.T) {
	const n = 4 * 4
	tests := []struct {
		name   string
		spec   dcmSpec
		opts   Options
		check  func(x int) uint8 // expected grey level of pixel x
		source string
	}{
		{
			name:   "signed 12-bit CT with intercept, default window",
			spec:   dcmSpec{rows: 4, cols: 4, bitsAlloc: 16, bitsStored: 12, signed: true, modality: "CT", intercept: "-1024", slope: "1", pixels: [][]int{ramp(n, 900, 20)}},
			check:  func(x int) uint8 { return expectedGray(float64(900+20*x)-1024, 40, 400, false) },
			source: WindowFromCTDefault,
		},
		{
			name: "negative stored values sign-extended from 12 bits",
			// 0xF38 is −200 in 12-bit two's complement; bits above 12 are junk.
			spec:   dcmSpec{rows: 4, cols: 4, bitsAlloc: 16, bitsStored: 12, signed: true, modality: "CT", center: "-200", width: "100", pixels: [][]int{ramp(n, 0xAF38, 1)}},
			check:  func(x int) uint8 { return expectedGray(float64(-200+x), -200, 100, false) },
			source: WindowFromFile,
		},
		{
			name:   "MONOCHROME1 8-bit inverted, full range",
			spec:   dcmSpec{rows: 4, cols: 4, bitsAlloc: 8, photometric: "MONOCHROME1", modality: "DX", pixels: [][]int{ramp(n, 0, 17)}},
			check:  func(x int) uint8 { return 255 - uint8(17*x) },
			source: WindowFromFullRange,
		},
		{
			name:   "16-bit MR without window: min-max",
			spec:   dcmSpec{rows: 4, cols: 4, bitsAlloc: 16, modality: "MR", pixels: [][]int{ramp(n, 1000, 100)}},
			check:  func(x int) uint8 { return expectedGray(float64(1000+100*x), 1750.5, 1501, false) },
			source: WindowFromMinMax,
		},
		{
			name:   "window override",
			spec:   dcmSpec{rows: 4, cols: 4, bitsAlloc: 16, modality: "MR", center: "5", width: "5", pixels: [][]int{ramp(n, 0, 10)}},
			opts:   Options{Window: Window{Center: 75, Width: 150}},
			check:  func(x int) uint8 { return expectedGray(float64(10*x), 75, 150, false) },
			source: WindowFromOptions,
		},
		{
			name:   "big endian",
			spec:   dcmSpec{rows: 4, cols: 4, bitsAlloc: 16, ts: tsExplicitBE, center: "1000", width: "2000", pixels: [][]int{ramp(n, 0, 130)}},
			check:  func(x int) uint8 { return expectedGray(float64(130*x), 1000, 2000, false) },
			source: WindowFromFile,
		},
		{
			name:   "implicit VR, frame 3 of 3 chosen explicitly",
			spec:   dcmSpec{rows: 4, cols: 4, frames: 3, bitsAlloc: 8, ts: tsImplicitLE, pixels: [][]int{ramp(n, 0, 1), ramp(n, 50, 1), ramp(n, 100, 1)}},
			opts:   Options{Frame: 3},
			check:  func(x int) uint8 { return uint8(100 + x) },
			source: WindowFromFullRange,
		},
		{
			name:   "middle frame by default",
			spec:   dcmSpec{rows: 4, cols: 4, frames: 3, bitsAlloc: 8, pixels: [][]int{ramp(n, 0, 1), ramp(n, 50, 1), ramp(n, 100, 1)}},
			check:  func(x int) uint8 { return uint8(50 + x) },
			source: WindowFromFullRange,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, info, err := DecodeWith(buildDICOM(t, tt.spec), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if info.WindowSource != tt.source {
				t.Errorf("window source %q, want %q", info.WindowSource, tt.source)
			}
			g := img.(*image.Gray)
			for x := 0; x < n; x++ {
				if want := tt.check(x); g.Pix[x] != want {
					t.Fatalf("pixel %d = %d, want %d (info %+v)", x, g.Pix[x], want, info)
				}
			}
		})
	}
}

func TestDICOMColour(t *testing.T) {
	// 2×2 RGB: red, green, blue, white.
	inter := []int{255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255}
	planar := []int{255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255}
	want := []color.RGBA{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}, {255, 255, 255, 255}}
	for _, tt := range []struct {
		name   string
		planar int
		px     []int
	}{{"interleaved", 0, inter}, {"planar", 1, planar}} {
		t.Run(tt.name, func(t *testing.T) {
			data := buildDICOM(t, dcmSpec{rows: 2, cols: 2, bitsAlloc: 8, samples: 3, planar: tt.planar, photometric: "RGB", pixels: [][]int{tt.px}})
			img, info, err := Decode(data, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Channels != 3 {
				t.Errorf("channels %d", info.Channels)
			}
			for i, w := range want {
				if got := img.At(i%2, i/2).(color.RGBA); got != w {
					t.Errorf("pixel %d = %v, want %v", i, got, w)
				}
			}
		})
	}
}

func TestDICOMBaselineJPEG(t *testing.T) {
	src := image.NewGray(image.Rect(0, 0, 32, 16))
	for i := range src.Pix {
		src.Pix[i] = uint8(i % 32 * 8)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, src, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%2 == 1 {
		buf.WriteByte(0) // DICOM items have even length
	}
	data := buildDICOM(t, dcmSpec{rows: 16, cols: 32, bitsAlloc: 8, photometric: "MONOCHROME1", ts: tsJPEGBaseline, encapsulated: [][]byte{buf.Bytes()}})
	img, info, err := Decode(data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !info.Inverted || info.TransferSyntax != tsJPEGBaseline {
		t.Errorf("info %+v", info)
	}
	g := img.(*image.Gray)
	for i, v := range src.Pix {
		if d := int(g.Pix[i]) - int(255-v); d < -3 || d > 3 {
			t.Fatalf("pixel %d = %d, want about %d", i, g.Pix[i], 255-v)
		}
	}
}

func TestDICOMBadInput(t *testing.T) {
	native := dcmSpec{rows: 4, cols: 4, bitsAlloc: 8, pixels: [][]int{ramp(16, 0, 1)}}
	good := buildDICOM(t, native)
	j2k := native
	j2k.ts, j2k.pixels, j2k.encapsulated = "1.2.840.10008.1.2.4.90", nil, [][]byte{{0xff, 0x4f, 0xff, 0x51}}
	palette := native
	palette.photometric = "PALETTE COLOR"
	bomb := dcmSpec{rows: 60000, cols: 60000, frames: 100, bitsAlloc: 16, pixels: nil}
	tests := []struct {
		name string
		data []byte
		opts Options
		want error
	}{
		{"truncated", good[:len(good)-7], Options{}, FormatError("")},
		{"header only", good[:140], Options{}, FormatError("")},
		{"JPEG 2000 refused", buildDICOM(t, j2k), Options{}, ErrUnsupported},
		{"palette colour refused", buildDICOM(t, palette), Options{}, ErrUnsupported},
		{"frame out of range", good, Options{Frame: 2}, ErrFrame},
		{"negative frame", good, Options{Frame: -1}, ErrFrame},
		{"pixel bomb in header", buildDICOM(t, bomb), Options{}, ErrTooLarge},
		{"over byte limit", good, Options{Limits: Limits{MaxBytes: 100}}, ErrTooLarge},
		{"over pixel limit", good, Options{Limits: Limits{MaxPixels: 15}}, ErrTooLarge},
		{"deflate bomb", deflateBomb(t), Options{Limits: Limits{MaxBytes: 1 << 20}}, ErrTooLarge},
		{"a million empty elements", junkElements(t, good), Options{}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodeWith(tt.data, tt.opts)
			if err == nil {
				t.Fatal("no error")
			}
			var fe FormatError
			if _, isFormat := tt.want.(FormatError); isFormat {
				if !errors.As(err, &fe) {
					t.Fatalf("error %v (%T), want FormatError", err, err)
				}
			} else if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if err.Error() == "" {
				t.Error("empty message")
			}
		})
	}
}

// junkElements keeps the file meta group of a valid file and appends 1 MiB
// of zeros, which parse as 131072 empty (0000,0000) elements.
func junkElements(t *testing.T, valid []byte) []byte {
	t.Helper()
	end, err := metaEnd(valid)
	if err != nil {
		t.Fatal(err)
	}
	return append(bytes.Clone(valid[:end]), make([]byte, 1<<20)...)
}

// deflateBomb keeps the file meta group of the real deflated fixture and
// replaces the data set with 32 MiB of zeros deflated to a few KiB.
func deflateBomb(t *testing.T) []byte {
	t.Helper()
	real, err := os.ReadFile("testdata/deflated.dcm")
	if err != nil {
		t.Fatal(err)
	}
	end, err := metaEnd(real)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.Write(real[:end])
	zw, _ := flate.NewWriter(&buf, flate.BestCompression)
	zero := make([]byte, 1<<20)
	for range 32 {
		zw.Write(zero)
	}
	zw.Close()
	if buf.Len() > 1<<20 {
		t.Fatalf("bomb is %d bytes", buf.Len())
	}
	return buf.Bytes()
}
