package preprocessing

import (
	"errors"
	"fmt"
	"image/color"
)

// Sentinel errors for control flow. Every error returned by this package
// either is one of these, wraps one of them, or is a FormatError, so a caller
// can map it to a client-facing status with errors.Is / errors.As.
var (
	// ErrTooLarge reports input over a Limits bound: the encoded size, the
	// pixel count read from the header, or the size of decompressed data.
	ErrTooLarge = errors.New("preprocessing: image too large")
	// ErrUnsupported reports a well-formed input this package does not
	// handle: an unknown container format, a compressed DICOM transfer
	// syntax without a decoder, a photometric interpretation it cannot map.
	ErrUnsupported = errors.New("preprocessing: unsupported image")
	// ErrEmpty reports an empty input or an image with no pixels.
	ErrEmpty = errors.New("preprocessing: empty image")
	// ErrConfig reports an invalid Config (see Config.Validate).
	ErrConfig = errors.New("preprocessing: invalid config")
	// ErrFrame reports a DICOM frame number outside the file's frames.
	ErrFrame = errors.New("preprocessing: frame out of range")
)

// FormatError reports input that is not a valid encoding of the format it
// claims to be (a corrupt PNG, a truncated DICOM, a decoder that panicked on
// it). Its text is safe to show to a client.
type FormatError string

// Error implements error.
func (e FormatError) Error() string { return "preprocessing: invalid image: " + string(e) }

// formatErrorf builds a FormatError from a format string. The cause, if any,
// is flattened into the message: FormatError is a value type so clients can
// match it with errors.As without caring about third-party error types.
func formatErrorf(format string, args ...any) error {
	return FormatError(fmt.Sprintf(format, args...))
}

// Limits bounds the work a decode may do, checked before any pixel buffer is
// allocated. The zero value of a field means "use the default".
type Limits struct {
	// MaxBytes is the largest encoded input accepted, in bytes (default
	// DefaultMaxBytes). For deflated DICOM it also bounds the inflated
	// data set.
	MaxBytes int64
	// MaxPixels is the largest pixel count accepted, read from the header
	// before decoding: width×height for images, Rows×Columns×NumberOfFrames
	// for DICOM (default DefaultMaxPixels).
	MaxPixels int64
	// MaxDecodedBytes is the largest buffer a decode may allocate for the
	// decoded image, read from the header before decoding: width×height
	// times the bytes per pixel of the header's colour model (8 for a
	// 16-bit RGB PNG, 2 for 16-bit grey, 4 for 8-bit RGB, 3 for JPEG
	// YCbCr, 1 for grey or palette). Default DefaultMaxDecodedBytes. DICOM
	// is bounded by MaxPixels and MaxBytes.
	MaxDecodedBytes int64
}

// Defaults for Limits.
const (
	// DefaultMaxBytes is 64 MiB of encoded input.
	DefaultMaxBytes int64 = 64 << 20
	// DefaultMaxPixels is 2^26 (about 67 million) pixels: a 8192×8192
	// image, or a 512×512 CT series of 256 frames.
	DefaultMaxPixels int64 = 1 << 26
	// DefaultMaxDecodedBytes is 512 MiB: DefaultMaxPixels of the widest
	// pixel (8 bytes), so by default only MaxPixels binds.
	DefaultMaxDecodedBytes int64 = DefaultMaxPixels * 8
)

// DefaultLimits returns Limits with every field at its default.
func DefaultLimits() Limits {
	return Limits{MaxBytes: DefaultMaxBytes, MaxPixels: DefaultMaxPixels, MaxDecodedBytes: DefaultMaxDecodedBytes}
}

// withDefaults fills zero or negative fields with the defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	if l.MaxDecodedBytes <= 0 {
		l.MaxDecodedBytes = DefaultMaxDecodedBytes
	}
	return l
}

// checkDecodedBytes returns ErrTooLarge (wrapped) when a w×h image of
// colour model m would take more than MaxDecodedBytes once decoded; w and
// h have passed checkPixels.
func (l Limits) checkDecodedBytes(w, h int, m color.Model) error {
	bpp := bytesPerPixel(m)
	if n := int64(w) * int64(h); n > l.MaxDecodedBytes/bpp {
		return fmt.Errorf("%w: %d×%d pixels of %d bytes each (%d MiB decoded) exceeds the decoded-size limit of %d MiB",
			ErrTooLarge, w, h, bpp, n*bpp>>20, l.MaxDecodedBytes>>20)
	}
	return nil
}

// bytesPerPixel is the size of one pixel of the image the standard
// decoders return for colour model m; 8 (the widest) when unknown.
func bytesPerPixel(m color.Model) int64 {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.YCbCrModel:
		return 3 // 4:4:4; subsampled JPEGs take less
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel, color.NYCbCrAModel:
		return 4
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 8
}

// checkPixels returns ErrTooLarge (wrapped) when w×h×frames exceeds the
// limit, and ErrEmpty when any dimension is not positive. It is written to
// be overflow-safe for any int inputs.
func (l Limits) checkPixels(w, h, frames int) error {
	if w <= 0 || h <= 0 || frames <= 0 {
		return fmt.Errorf("%w: dimensions %d×%d×%d", ErrEmpty, w, h, frames)
	}
	max, total := l.MaxPixels, int64(1)
	for _, d := range [...]int{w, h, frames} {
		if total > max/int64(d) { // total*d > max, without overflow
			return fmt.Errorf("%w: %d×%d×%d pixels exceeds the limit of %d", ErrTooLarge, w, h, frames, max)
		}
		total *= int64(d)
	}
	return nil
}
