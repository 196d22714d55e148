package jpegscale

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	_ "image/png" // the real greyscale sources are PNG
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	xdraw "golang.org/x/image/draw"
)

// sharedData returns the path of a file in the project's real data folder
// (../shared/data from the repository root) and fails if it is missing.
func sharedData(tb testing.TB, rel string) string {
	tb.Helper()
	p := filepath.Join("..", "..", "..", "..", "shared", "data", rel)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("real test data missing (see /work/shared/data/README.md): %v", err)
	}
	return p
}

// fixture is one JPEG under test.
type fixture struct {
	name string
	data []byte
}

// fixtures returns the JPEGs the tests decode: image/jpeg's own test
// files (every subsampling it reads, progressive, restart intervals,
// greyscale, CMYK, RGB; 150×103, so every scale has edge blocks), the
// same CMYK file marked YCCK, three libjpeg-turbo files cut from BCCD at
// odd sizes (4:4:4 progressive with restarts, 4:2:2 with restarts,
// progressive grey), every 43rd real BCCD photograph (640×480 4:2:0), and
// real images re-encoded here with image/jpeg (4:2:0 colour and grey, at
// qualities 50, 75 and 95, at sizes that are and are not multiples of 64).
func fixtures(tb testing.TB) []fixture {
	tb.Helper()
	var out []fixture
	paths, err := filepath.Glob("testdata/*.jpeg")
	if err != nil || len(paths) < 20 {
		tb.Fatalf("testdata: %d files, %v", len(paths), err)
	}
	bccd, _ := filepath.Glob(filepath.Join(filepath.Dir(sharedData(tb, "bccd/images/BloodImage_00000.jpg")), "*.jpg"))
	for i := 0; i < len(bccd); i += 43 {
		paths = append(paths, bccd[i])
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, fixture{filepath.Base(p), b})
		if filepath.Base(p) == "video-001.cmyk.jpeg" {
			out = append(out, fixture{"video-001.ycck.jpeg", adobeTransform(tb, b, 2)})
		}
	}
	photo := decodeFile(tb, sharedData(tb, "bccd/images/BloodImage_00000.jpg"))
	oct := decodeFile(tb, octImage(tb))
	for _, q := range []int{50, 75, 95} {
		for _, sz := range []image.Point{{640, 480}, {203, 157}, {129, 65}, {17, 9}, {8, 8}, {1, 1}} {
			for _, src := range []struct {
				name string
				img  image.Image
			}{{"bccd", photo}, {"oct-gray", oct}} {
				img := resized(src.img, sz.X, sz.Y)
				var buf bytes.Buffer
				if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
					tb.Fatal(err)
				}
				out = append(out, fixture{fmt.Sprintf("%s-%dx%d-q%d", src.name, sz.X, sz.Y, q), buf.Bytes()})
			}
		}
	}
	return out
}

// octImage returns a real greyscale OCT B-scan.
func octImage(tb testing.TB) string {
	tb.Helper()
	m, _ := filepath.Glob(filepath.Join(filepath.Dir(sharedData(tb, "kermany-oct/labels.jsonl")), "test", "*.png"))
	if len(m) == 0 {
		tb.Fatal("no PNG under kermany-oct")
	}
	return m[0]
}

func decodeFile(tb testing.TB, path string) image.Image {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return img
}

// resized scales img to w×h (CatmullRom), keeping greyscale grey.
func resized(img image.Image, w, h int) image.Image {
	var dst xdraw.Image = image.NewRGBA(image.Rect(0, 0, w, h))
	if img.ColorModel() == color.GrayModel {
		dst = image.NewGray(image.Rect(0, 0, w, h))
	}
	xdraw.CatmullRom.Scale(dst, dst.Bounds(), img, img.Bounds(), xdraw.Src, nil)
	return dst
}

// adobeTransform returns a copy of a JPEG with its APP14 Adobe
// transform byte set to t (2 marks a four-component file YCCK).
func adobeTransform(tb testing.TB, b []byte, t byte) []byte {
	tb.Helper()
	i := bytes.Index(b, []byte("\xff\xee"))
	if i < 0 || !bytes.Equal(b[i+4:i+9], []byte("Adobe")) {
		tb.Fatal("no Adobe APP14 segment")
	}
	out := bytes.Clone(b)
	out[i+4+11] = t
	return out
}

// TestDecodeFullSizeIsImageJPEG checks that the fork at scale 1 is
// image/jpeg: the same image, bit for bit, and the same header.
func TestDecodeFullSizeIsImageJPEG(t *testing.T) {
	for _, f := range fixtures(t) {
		t.Run(f.name, func(t *testing.T) {
			want, werr := jpeg.Decode(bytes.NewReader(f.data))
			got, err := Decode(bytes.NewReader(f.data), 1)
			if (err != nil) != (werr != nil) || err != nil && err.Error() != werr.Error() {
				t.Fatalf("error %v, image/jpeg says %v", err, werr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %T %v differs from image/jpeg's %T %v", got, got.Bounds(), want, want.Bounds())
			}
			wc, _ := jpeg.DecodeConfig(bytes.NewReader(f.data))
			c, err := DecodeConfig(bytes.NewReader(f.data))
			if err != nil || c.Config != wc {
				t.Fatalf("DecodeConfig %+v, %v; image/jpeg says %+v", c.Config, err, wc)
			}
		})
	}
}

// planes returns an image's channels as image/jpeg shows them, one int
// per pixel per channel: grey; Y, Cb, Cr with each chroma sample repeated
// over the pixels it covers (image.YCbCr.At); C, M, Y, K; or R, G, B.
func planes(tb testing.TB, img image.Image) [][]int {
	tb.Helper()
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	var out [][]int
	add := func(n int, at func(x, y int) []uint8) {
		out = make([][]int, n)
		for c := range out {
			out[c] = make([]int, w*h)
		}
		for y := range h {
			for x := range w {
				for c, v := range at(b.Min.X+x, b.Min.Y+y) {
					out[c][y*w+x] = int(v)
				}
			}
		}
	}
	switch m := img.(type) {
	case *image.Gray:
		add(1, func(x, y int) []uint8 { return []uint8{m.GrayAt(x, y).Y} })
	case *image.YCbCr:
		add(3, func(x, y int) []uint8 { c := m.YCbCrAt(x, y); return []uint8{c.Y, c.Cb, c.Cr} })
	case *image.CMYK:
		add(4, func(x, y int) []uint8 { c := m.CMYKAt(x, y); return []uint8{c.C, c.M, c.Y, c.K} })
	case *image.RGBA:
		add(3, func(x, y int) []uint8 { c := m.RGBAAt(x, y); return []uint8{c.R, c.G, c.B} })
	default:
		tb.Fatalf("unexpected image type %T", img)
	}
	return out
}

// boxReduce returns the mean, rounded half up, of each k×k box of a
// w×h plane, boxes cut at the right and bottom edges.
func boxReduce(p []int, w, h, k int) []int {
	ow, oh := ScaledSize(w, h, k)
	out := make([]int, ow*oh)
	for oy := range oh {
		for ox := range ow {
			sum, n := 0, 0
			for y := oy * k; y < min(oy*k+k, h); y++ {
				for x := ox * k; x < min(ox*k+k, w); x++ {
					sum += p[y*w+x]
					n++
				}
			}
			out[oy*ow+ox] = (sum + n/2) / n
		}
	}
	return out
}

// storedPlanes decodes data at scale k and returns the component planes
// the decoder wrote, before any colour conversion (YCbCr, CMYK or YCCK
// are returned as stored; chroma sample repeated over the pixels it
// covers, as image.YCbCr.At reads it), with the image's width and height.
func storedPlanes(tb testing.TB, data []byte, k int) ([][]int, int, int, error) {
	tb.Helper()
	d := decoder{scale: k}
	img, err := d.decode(bytes.NewReader(data), false)
	if err != nil {
		return nil, 0, 0, err
	}
	var p [][]int
	switch {
	case d.img1 != nil:
		p = planes(tb, d.img1)
	case d.img3 != nil:
		p = planes(tb, d.img3)
	default:
		tb.Fatalf("no planes decoded for %T", img)
	}
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	if d.blackPix != nil {
		k := make([]int, w*h)
		for y := range h {
			for x := range w {
				k[y*w+x] = int(d.blackPix[y*d.blackStride+x])
			}
		}
		p = append(p, k)
	}
	return p, w, h, nil
}

// TestDecodeScaledIsBoxMean is the decoder's contract: at scale 2, 4 and
// 8 every stored channel (grey; Y, Cb, Cr; C, M, Y, K) equals the
// full-size decode box-reduced by the scale, the mean rounded half up,
// with boxes cut at the image's edges: exactly at scales 2 and 4 (the
// inverse DCT runs, then the mean), within one level at scale 8 (blocks
// whose mean is taken from the DC term alone; TestDCOnlyBound). The
// image Decode returns is then checked the same way against image/jpeg's
// full-size image within one level, except YCCK, which is converted to
// RGB per pixel after the mean (not linear where the conversion clips).
func TestDecodeScaledIsBoxMean(t *testing.T) {
	for _, f := range fixtures(t) {
		full, err := jpeg.Decode(bytes.NewReader(f.data))
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		cfg, err := DecodeConfig(bytes.NewReader(f.data))
		if err != nil {
			t.Fatal(err)
		}
		fs, w, h, err := storedPlanes(t, f.data, 1)
		if err != nil {
			t.Fatal(err)
		}
		fp := planes(t, full)
		for _, k := range []int{2, 4, 8} {
			t.Run(fmt.Sprintf("%s/%d", f.name, k), func(t *testing.T) {
				got, err := Decode(bytes.NewReader(f.data), k)
				if !cfg.Supports(k) {
					var ue UnsupportedError
					if !errors.As(err, &ue) {
						t.Fatalf("scale %d unsupported by the header but Decode gave %v", k, err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				ow, oh := ScaledSize(w, h, k)
				if got.Bounds() != image.Rect(0, 0, ow, oh) {
					t.Fatalf("bounds %v, want %dx%d", got.Bounds(), ow, oh)
				}
				if ycc, ok := got.(*image.YCbCr); ok && ycc.SubsampleRatio != image.YCbCrSubsampleRatio444 {
					t.Fatalf("subsample ratio %v, want 4:4:4", ycc.SubsampleRatio)
				}
				gs, _, _, err := storedPlanes(t, f.data, k)
				if err != nil {
					t.Fatal(err)
				}
				bound := 0
				if k == 8 {
					bound = 1
				}
				max, mean := compare(t, "stored", gs, fs, w, h, k, bound)
				if testing.Verbose() && max > 0 {
					t.Logf("stored channels: max difference %d, mean %.4f levels", max, mean)
				}
				if f.name == "video-001.ycck.jpeg" {
					return
				}
				compare(t, "decoded", planes(t, got), fp, w, h, k, 1)
			})
		}
	}
}

// compare checks reduced planes against full-size planes box-reduced by
// k, within bound levels, and returns the largest and mean difference.
func compare(t *testing.T, what string, got, full [][]int, w, h, k, bound int) (int, float64) {
	t.Helper()
	if len(got) != len(full) {
		t.Fatalf("%s: %d channels, full decode has %d", what, len(got), len(full))
	}
	ow, _ := ScaledSize(w, h, k)
	var sum, n, maxDiff int
	for c := range full {
		for i, v := range boxReduce(full[c], w, h, k) {
			d := max(got[c][i]-v, v-got[c][i])
			if d > bound {
				t.Fatalf("%s channel %d pixel (%d,%d): %d, box mean of the full decode %d (bound %d)", what, c, i%ow, i/ow, got[c][i], v, bound)
			}
			sum += d
			maxDiff = max(maxDiff, d)
			n++
		}
	}
	return maxDiff, float64(sum) / float64(n)
}

// TestDCOnlyBound checks dcOnly's promise on random blocks: whenever it
// answers, no sample of the full inverse DCT reaches a clip and the
// block's mean sample is within one level of its answer.
func TestDCOnlyBound(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	answered := 0
	for i := range 200000 {
		var b block
		b[0] = int32(r.IntN(2048) - 1024)
		nz := 1 + r.IntN(12)
		scaleAC := int32(1 + r.IntN(1<<uint(i%9)))
		for range nz {
			b[1+r.IntN(63)] = int32(r.IntN(int(2*scaleAC+1))) - scaleAC
		}
		v, ok := dcOnly(&b)
		if !ok {
			continue
		}
		answered++
		p := b
		idct(&p)
		var sum int
		for _, c := range p {
			if c < -128 || c > 127 {
				t.Fatalf("block %v: dcOnly answered %d but sample %d clips", b, v, c)
			}
			sum += int(c) + 128
		}
		mean := (sum + 32) / 64
		if d := mean - int(v); d > 1 || d < -1 {
			t.Fatalf("block %v: dcOnly %d, mean of the samples %d", b, v, mean)
		}
	}
	if answered < 50000 {
		t.Fatalf("dcOnly answered only %d of 200000 blocks", answered)
	}
}

// TestDecodeBadInput checks that corrupt and truncated input fails at
// every scale with the error image/jpeg gives at full size (the parser
// is shared), and that an unknown scale is refused.
func TestDecodeBadInput(t *testing.T) {
	good, err := os.ReadFile("testdata/video-001.q50.420.progressive.jpeg")
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile("testdata/bccd-333x251.422.q75.restart.jpeg")
	if err != nil {
		t.Fatal(err)
	}
	corrupt := bytes.Clone(base)
	sos := bytes.Index(corrupt, []byte("\xff\xda"))
	for i := sos + 20; i < len(corrupt)-2; i += 97 {
		corrupt[i] = 0xff
	}
	inputs := []struct {
		name string
		data []byte
	}{
		{"truncated header", good[:100]},
		{"truncated scan", good[:len(good)/2]},
		{"truncated baseline", base[:len(base)*2/3]},
		{"corrupt scan", corrupt},
		{"not a JPEG", []byte("\x89PNG\r\n\x1a\n")},
		{"empty", nil},
	}
	for _, in := range inputs {
		_, werr := jpeg.Decode(bytes.NewReader(in.data))
		if werr == nil {
			t.Fatalf("%s: image/jpeg accepts it", in.name)
		}
		for _, k := range []int{1, 2, 4, 8} {
			_, err := Decode(bytes.NewReader(in.data), k)
			if err == nil || err.Error() != werr.Error() {
				t.Errorf("%s at scale %d: %v, image/jpeg says %v", in.name, k, err, werr)
			}
			var fe FormatError
			if !errors.As(err, &fe) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				t.Errorf("%s at scale %d: %T %v is neither a FormatError nor EOF", in.name, k, err, err)
			}
		}
	}
	for _, k := range []int{0, 3, 16, -1} {
		if _, err := Decode(bytes.NewReader(good), k); err == nil {
			t.Errorf("scale %d accepted", k)
		}
	}
}

// TestSupports checks which scales each subsampling allows.
func TestSupports(t *testing.T) {
	tests := []struct {
		file string
		want [4]bool // scales 1, 2, 4, 8
	}{
		{"video-001.q50.444.jpeg", [4]bool{true, true, true, true}},
		{"video-001.q50.420.jpeg", [4]bool{true, true, true, true}},
		{"video-001.q50.411.jpeg", [4]bool{true, false, true, true}},
		{"video-001.q50.410.progressive.jpeg", [4]bool{true, false, true, true}},
		{"video-005.gray.q50.2x2.jpeg", [4]bool{true, true, true, true}},
	}
	for _, tt := range tests {
		b, err := os.ReadFile(filepath.Join("testdata", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		c, err := DecodeConfig(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		for i, k := range []int{1, 2, 4, 8} {
			if c.Supports(k) != tt.want[i] {
				t.Errorf("%s: Supports(%d) = %v", tt.file, k, !tt.want[i])
			}
		}
		if c.Supports(3) || c.Supports(16) {
			t.Errorf("%s: supports 3 or 16", tt.file)
		}
	}
}
