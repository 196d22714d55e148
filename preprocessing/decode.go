package preprocessing

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"io"
	"os"

	// Register the standard decoders with the image package.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// Format names reported in Info.Format.
const (
	FormatPNG   = "png"
	FormatJPEG  = "jpeg"
	FormatGIF   = "gif"
	FormatBMP   = "bmp"
	FormatTIFF  = "tiff"
	FormatWebP  = "webp"
	FormatDICOM = "dicom"
)

// Info describes a decoded image and, for DICOM, how its stored values were
// mapped to display grey levels.
type Info struct {
	// Format is one of the Format* constants.
	Format string `json:"format"`
	// Width and Height are the decoded image size in pixels.
	Width  int `json:"width"`
	Height int `json:"height"`
	// BitDepth is the number of significant bits per sample as stored
	// (DICOM BitsStored; 16 for 16-bit PNG/TIFF; 8 otherwise).
	BitDepth int `json:"bit_depth"`
	// Channels is 1 for greyscale images and 3 for colour ones (after
	// dropping alpha).
	Channels int `json:"channels"`
	// Scale is k when a JPEG was decoded at 1/k of its stored size
	// (Options.ReduceFor): Width and Height are the stored size divided
	// by k, rounded up. 0 when decoded at full size.
	Scale int `json:"scale,omitempty"`

	// The fields below are set for DICOM input only.

	// Modality is DICOM (0008,0060), e.g. "CT", "MR", "CR", "PT".
	Modality string `json:"modality,omitempty"`
	// Photometric is DICOM (0028,0004), e.g. "MONOCHROME2".
	Photometric string `json:"photometric,omitempty"`
	// TransferSyntax is the DICOM transfer syntax UID.
	TransferSyntax string `json:"transfer_syntax,omitempty"`
	// Frames is the number of frames in the file; Frame the 1-based frame
	// that was decoded.
	Frames int `json:"frames,omitempty"`
	Frame  int `json:"frame,omitempty"`
	// RescaleSlope and RescaleIntercept map stored values to modality
	// values (Hounsfield units for CT); 1 and 0 when absent.
	RescaleSlope     float64 `json:"rescale_slope,omitempty"`
	RescaleIntercept float64 `json:"rescale_intercept,omitempty"`
	// Window is the VOI window applied to modality values, and
	// WindowSource where it came from (see the WindowFrom* constants).
	Window       Window `json:"window,omitempty"`
	WindowSource string `json:"window_source,omitempty"`
	// Inverted is true when MONOCHROME1 data was inverted so that higher
	// values are brighter.
	Inverted bool `json:"inverted,omitempty"`
}

// Options selects how Decode maps input to an image. The zero value is the
// default for everything.
type Options struct {
	// Limits bounds the decode (zero fields take defaults).
	Limits Limits
	// Frame is the 1-based DICOM frame number to decode; 0 selects the
	// middle frame (index n/2 counted from 0). Ignored for other formats.
	Frame int
	// Window, when its Width is positive, overrides the DICOM window.
	Window Window
	// ReduceFor, when set, is the image processor the decoded image is
	// for. A JPEG much larger than its target size (Config.SmartResize)
	// then decodes at 1/2, 1/4 or 1/8 scale in the DCT domain, each
	// decoded pixel the mean of the k×k stored pixels it covers (within
	// one grey level): the largest k that leaves both sides at least twice
	// the target's and gives the same SmartResize target, so Process makes
	// the same patch grid, resampling from a finer image than it keeps.
	// Info.Scale reports k. Limits.MaxPixels and MaxDecodedBytes then bound
	// the reduced image; the stored size is bounded by ReducedStoredPixels.
	// Nil decodes every image at full size.
	ReduceFor *Config
}

// ReducedStoredPixels is the cap on the stored pixel count of a JPEG
// decoded at reduced scale (Options.ReduceFor), as a multiple of
// Limits.MaxPixels: the entropy decoding still visits every stored block.
// A progressive JPEG is held to MaxPixels itself, because its decoder
// keeps every block's coefficients (4 bytes per stored sample) until the
// last scan.
const ReducedStoredPixels = 4

// Decode decodes an encoded image (PNG, JPEG, GIF, BMP, TIFF, WebP or
// DICOM) with the default Options but the given limits. See DecodeWith.
func Decode(data []byte, lim Limits) (image.Image, Info, error) {
	return DecodeWith(data, Options{Limits: lim})
}

// DecodeFile reads and decodes the file at path. It refuses files larger
// than lim.MaxBytes before reading them.
func DecodeFile(path string, lim Limits) (image.Image, Info, error) {
	return DecodeFileWith(path, Options{Limits: lim})
}

// DecodeFileWith is DecodeFile with full Options.
func DecodeFileWith(path string, opts Options) (image.Image, Info, error) {
	lim := opts.Limits.withDefaults()
	f, err := os.Open(path)
	if err != nil {
		return nil, Info{}, fmt.Errorf("preprocessing: open image: %w", err)
	}
	defer f.Close()
	// Read one byte past the limit so an oversize file is detected without
	// trusting Stat (which lies for pipes and /proc files).
	data, err := io.ReadAll(io.LimitReader(f, lim.MaxBytes+1))
	if err != nil {
		return nil, Info{}, fmt.Errorf("preprocessing: read %s: %w", path, err)
	}
	img, info, err := DecodeWith(data, opts)
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", path, err)
	}
	return img, info, nil
}

// DecodeWith decodes an encoded image. It checks, in order: the encoded size
// against Limits.MaxBytes (ErrTooLarge); the format from the leading bytes
// (ErrUnsupported if unknown); the pixel count from the header against
// Limits.MaxPixels and the decoded size against Limits.MaxDecodedBytes
// (ErrTooLarge); and only then decodes. Corrupt input gives
// a FormatError; a panic inside a third-party decoder is recovered and
// returned as a FormatError. DICOM is mapped to 8-bit grey (or RGB) through
// rescale slope/intercept, a VOI window and MONOCHROME1 inversion; see
// DecodeDICOM.
func DecodeWith(data []byte, opts Options) (img image.Image, info Info, err error) {
	lim := opts.Limits.withDefaults()
	if len(data) == 0 {
		return nil, Info{}, fmt.Errorf("%w: no bytes", ErrEmpty)
	}
	if int64(len(data)) > lim.MaxBytes {
		return nil, Info{}, fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrTooLarge, len(data), lim.MaxBytes)
	}
	if IsDICOM(data) {
		opts.Limits = lim
		return DecodeDICOM(data, opts)
	}
	return decodeStd(data, lim, opts.ReduceFor)
}

// IsDICOM reports whether data starts with a DICOM Part 10 preamble (the
// "DICM" magic at offset 128).
func IsDICOM(data []byte) bool {
	return len(data) >= 132 && string(data[128:132]) == "DICM"
}

// decodeStd decodes the formats registered with the image package; a
// JPEG at reduced scale when reduceFor asks for it.
func decodeStd(data []byte, lim Limits, reduceFor *Config) (img image.Image, info Info, err error) {
	defer recoverDecoder("image", &err)
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return nil, Info{}, fmt.Errorf("%w: unknown image format (want PNG, JPEG, GIF, BMP, TIFF, WebP or DICOM)", ErrUnsupported)
		}
		return nil, Info{}, formatErrorf("%s header: %v", format, err)
	}
	if format == FormatJPEG && reduceFor != nil {
		if img, info, err = decodeReducedJPEG(data, lim, *reduceFor); img != nil || err != nil {
			return img, info, err
		}
	}
	if err := lim.checkPixels(cfg.Width, cfg.Height, 1); err != nil {
		return nil, Info{}, fmt.Errorf("%s header: %w", format, err)
	}
	if err := lim.checkDecodedBytes(cfg.Width, cfg.Height, cfg.ColorModel); err != nil {
		return nil, Info{}, fmt.Errorf("%s header: %w", format, err)
	}
	img, _, err = image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, Info{}, formatErrorf("%s: %v", format, err)
	}
	b := img.Bounds()
	if b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		// A decoder that disagrees with its own header is treated as corrupt
		// input rather than trusted with downstream buffers.
		return nil, Info{}, formatErrorf("%s: decoded %dx%d but header says %dx%d", format, b.Dx(), b.Dy(), cfg.Width, cfg.Height)
	}
	info = Info{Format: format, Width: b.Dx(), Height: b.Dy(), BitDepth: bitDepth(img), Channels: channels(img)}
	return img, info, nil
}

// recoverDecoder turns a panic inside a third-party decoder into a
// FormatError stored in *err. Use as `defer recoverDecoder("png", &err)`.
func recoverDecoder(what string, err *error) {
	if r := recover(); r != nil {
		*err = formatErrorf("%s decoder failed on this input: %v", what, r)
	}
}

// bitDepth reports the bits per sample of a decoded image's colour model.
func bitDepth(img image.Image) int {
	switch img.(type) {
	case *image.Gray16, *image.RGBA64, *image.NRGBA64:
		return 16
	default:
		return 8
	}
}

// channels reports 1 for greyscale images and 3 otherwise.
func channels(img image.Image) int {
	switch img.(type) {
	case *image.Gray, *image.Gray16:
		return 1
	default:
		return 3
	}
}
