package preprocessing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// sharedData returns the path of a file in the project's real data folder
// (../shared/data from the repository root) and fails if it is missing.
func sharedData(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join("..", "..", "shared", "data", rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("real test data missing (see /work/shared/data/README.md): %v", err)
	}
	return p
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRealImages(t *testing.T) {
	tests := []struct {
		path     string
		format   string
		w, h     int
		channels int
	}{
		{sharedData(t, "pneumoniamnist/train/pneumoniamnist_train_00000.png"), FormatPNG, 28, 28, 1},
		{sharedData(t, "bccd/images/BloodImage_00000.jpg"), FormatJPEG, 640, 480, 3},
		{sharedData(t, "busi/images/benign_204.png"), FormatPNG, 0, 0, 0},
		{"testdata/yellow_rose.lossy.webp", FormatWebP, 0, 0, 3},
		{"testdata/gopher-doc.with-alpha.lossless.webp", FormatWebP, 0, 0, 3},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			img, info, err := DecodeFile(tt.path, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Format != tt.format || info.Width != img.Bounds().Dx() || info.Height != img.Bounds().Dy() {
				t.Errorf("info %+v for %v", info, img.Bounds())
			}
			if tt.w != 0 && (info.Width != tt.w || info.Height != tt.h) {
				t.Errorf("size %dx%d, want %dx%d", info.Width, info.Height, tt.w, tt.h)
			}
			if tt.channels != 0 && info.Channels != tt.channels {
				t.Errorf("channels %d, want %d", info.Channels, tt.channels)
			}
			if _, err := DefaultConfig().Process(img); err != nil {
				t.Errorf("Process: %v", err)
			}
		})
	}
}

// TestDecodeReencoded re-encodes a real ultrasound image as BMP, TIFF and
// GIF and checks each decodes to the same pixels (GIF: same size, its
// palette may quantise).
func TestDecodeReencoded(t *testing.T) {
	src, _, err := DecodeFile(sharedData(t, "busi/images/benign_204.png"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	encoders := []struct {
		format string
		enc    func(*bytes.Buffer, image.Image) error
		exact  bool
	}{
		{FormatBMP, func(b *bytes.Buffer, m image.Image) error { return bmp.Encode(b, m) }, true},
		{FormatTIFF, func(b *bytes.Buffer, m image.Image) error {
			return tiff.Encode(b, m, &tiff.Options{Compression: tiff.Deflate})
		}, true},
		{FormatGIF, func(b *bytes.Buffer, m image.Image) error { return gif.Encode(b, m, nil) }, false},
	}
	for _, e := range encoders {
		t.Run(e.format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := e.enc(&buf, src); err != nil {
				t.Fatal(err)
			}
			img, info, err := Decode(buf.Bytes(), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Format != e.format || img.Bounds().Size() != src.Bounds().Size() {
				t.Fatalf("info %+v bounds %v", info, img.Bounds())
			}
			if !e.exact {
				return
			}
			b := src.Bounds()
			for y := b.Min.Y; y < b.Max.Y; y += 7 {
				for x := b.Min.X; x < b.Max.X; x += 7 {
					r1, g1, b1, _ := src.At(x, y).RGBA()
					r2, g2, b2, _ := img.At(x, y).RGBA()
					if r1>>8 != r2>>8 || g1>>8 != g2>>8 || b1>>8 != b2>>8 {
						t.Fatalf("pixel (%d,%d) differs", x, y)
					}
				}
			}
		})
	}
}

// pngHeader returns a PNG signature and IHDR claiming w×h, with a correct
// CRC, followed by nothing: a decompression bomb's header.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 17)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = 8, 2 // 8-bit RGB
	binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write(ihdr)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(ihdr))
	return b.Bytes()
}

func TestDecodeBadInput(t *testing.T) {
	pngData := readFile(t, sharedData(t, "pneumoniamnist/train/pneumoniamnist_train_00000.png"))
	jpgData := readFile(t, sharedData(t, "bccd/images/BloodImage_00000.jpg"))
	corrupt := bytes.Clone(pngData)
	corrupt[len(corrupt)/2] ^= 0xff
	tests := []struct {
		name string
		data []byte
		lim  Limits
		want error // FormatError("") means "any FormatError"
	}{
		{"empty", nil, Limits{}, ErrEmpty},
		{"garbage", []byte("this is not an image at all, sorry"), Limits{}, ErrUnsupported},
		{"truncated PNG", pngData[:len(pngData)/2], Limits{}, FormatError("")},
		{"corrupt PNG", corrupt, Limits{}, FormatError("")},
		{"truncated JPEG", jpgData[:len(jpgData)/3], Limits{}, FormatError("")},
		{"PNG header only", pngHeader(64, 64), Limits{}, FormatError("")},
		{"PNG pixel bomb", pngHeader(100000, 100000), Limits{}, ErrTooLarge},
		{"zero width PNG", pngHeader(0, 10), Limits{}, FormatError("")},
		{"over byte limit", pngData, Limits{MaxBytes: 10}, ErrTooLarge},
		{"over pixel limit", jpgData, Limits{MaxPixels: 640*480 - 1}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, _, err := Decode(tt.data, tt.lim)
			if err == nil || img != nil {
				t.Fatalf("got image %v, error %v", img != nil, err)
			}
			if _, any := tt.want.(FormatError); any {
				var fe FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("error %v (%T), want a FormatError", err, err)
				}
			} else if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeFileErrors(t *testing.T) {
	if _, _, err := DecodeFile("testdata/does-not-exist.png", Limits{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.png")
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 300, 300))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := DecodeFile(big, Limits{MaxBytes: int64(buf.Len() - 1)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize file: %v", err)
	}
}

func TestRecoverDecoderPanic(t *testing.T) {
	decode := func() (err error) {
		defer recoverDecoder("test", &err)
		panic("decoder bug") // as a third-party decoder might on corrupt input
	}
	var fe FormatError
	if err := decode(); !errors.As(err, &fe) {
		t.Fatalf("recovered panic gave %v, want FormatError", err)
	}
}

// TestDecodedBytesBudget checks Limits.MaxDecodedBytes against the
// header's colour model: 100×100 images under a 40,000-byte budget.
func TestDecodedBytesBudget(t *testing.T) {
	r := image.Rect(0, 0, 100, 100)
	pal := image.NewPaletted(r, color.Palette{color.Black, color.White})
	cases := []struct {
		name string
		img  image.Image
		ok   bool
	}{
		{"8-bit grey (10,000 bytes)", image.NewGray(r), true},
		{"16-bit grey (20,000 bytes)", image.NewGray16(r), true},
		{"palette (10,000 bytes)", pal, true},
		{"8-bit RGBA (40,000 bytes)", image.NewNRGBA(r), true},
		{"16-bit RGBA (80,000 bytes)", image.NewNRGBA64(r), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := png.Encode(&buf, c.img); err != nil {
				t.Fatal(err)
			}
			_, _, err := Decode(buf.Bytes(), Limits{MaxDecodedBytes: 40000})
			if c.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !c.ok && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v, want ErrTooLarge", err)
			}
		})
	}
	// A 640×480 JPEG (YCbCr, counted 3 bytes a pixel).
	jpg := readFile(t, sharedData(t, "bccd/images/BloodImage_00000.jpg"))
	if _, _, err := Decode(jpg, Limits{MaxDecodedBytes: 640 * 480 * 3}); err != nil {
		t.Errorf("JPEG at the budget: %v", err)
	}
	if _, _, err := Decode(jpg, Limits{MaxDecodedBytes: 640*480*3 - 1}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("JPEG over the budget: %v, want ErrTooLarge", err)
	}
}
