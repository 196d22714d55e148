package preprocessing

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/frame"
	"github.com/suyashkumar/dicom/pkg/tag"
	"github.com/suyashkumar/dicom/pkg/uid"
)

// Transfer syntaxes this package decodes.
const (
	tsImplicitLE   = "1.2.840.10008.1.2"
	tsExplicitLE   = "1.2.840.10008.1.2.1"
	tsDeflatedLE   = "1.2.840.10008.1.2.1.99"
	tsExplicitBE   = "1.2.840.10008.1.2.2"
	tsJPEGBaseline = "1.2.840.10008.1.2.4.50"
)

// dicomHeader holds the attributes that drive pixel decoding.
type dicomHeader struct {
	rows, cols, frames        int
	bitsAllocated, bitsStored int
	signed                    bool
	samples, planar           int
	photometric, modality, ts string
	slope, intercept          float64
	window                    Window
	hasWindow                 bool
}

// DecodeDICOM decodes one frame of a DICOM Part 10 file into an 8-bit image:
// *image.Gray for MONOCHROME1/2 (stored values → rescale slope/intercept →
// VOI window → inversion for MONOCHROME1) and *image.RGBA for RGB or
// YBR_FULL. Native (uncompressed, implicit/explicit, little/big endian),
// deflated and baseline-JPEG transfer syntaxes are decoded; other compressed
// syntaxes (JPEG lossless/extended, JPEG-LS, JPEG 2000, RLE, …) return
// ErrUnsupported naming the syntax. Rows×Columns×NumberOfFrames is checked
// against Limits.MaxPixels before pixel data is read.
func DecodeDICOM(data []byte, opts Options) (img image.Image, info Info, err error) {
	lim := opts.Limits.withDefaults()
	if int64(len(data)) > lim.MaxBytes {
		return nil, Info{}, fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrTooLarge, len(data), lim.MaxBytes)
	}
	defer recoverDecoder("dicom", &err)
	h, err := readDICOMHeader(data, lim)
	if err != nil {
		return nil, Info{}, err
	}
	index, err := pickFrame(opts.Frame, h.frames)
	if err != nil {
		return nil, Info{}, err
	}
	ds, err := parseDICOM(data)
	if err != nil {
		return nil, Info{}, err
	}
	fr, err := selectFrame(ds, h, index)
	if err != nil {
		return nil, Info{}, err
	}
	info = Info{
		Format: FormatDICOM, Width: h.cols, Height: h.rows, BitDepth: h.bitsStored,
		Modality: h.modality, Photometric: h.photometric, TransferSyntax: h.ts,
		Frames: h.frames, Frame: index + 1, RescaleSlope: h.slope, RescaleIntercept: h.intercept,
	}
	if fr.IsEncapsulated() {
		img, err = renderJPEGFrame(fr.EncapsulatedData.Data, h, opts.Window, lim, &info)
	} else {
		img, err = renderNativeFrame(fr.NativeData, h, opts.Window, &info)
	}
	if err != nil {
		return nil, Info{}, err
	}
	info.Channels = channels(img)
	return img, info, nil
}

// readDICOMHeader parses everything but the pixel data, validates the
// attributes and the transfer syntax, and enforces the pixel limit (and, for
// deflated files, a bound on the inflated size).
func readDICOMHeader(data []byte, lim Limits) (dicomHeader, error) {
	if !IsDICOM(data) {
		return dicomHeader{}, fmt.Errorf("%w: not a DICOM Part 10 file (no DICM preamble)", ErrUnsupported)
	}
	if _, err := scanMeta(data); err != nil {
		return dicomHeader{}, err
	}
	ts := metaTransferSyntax(data)
	if ts == "" {
		return dicomHeader{}, formatErrorf("dicom: file meta group has no transfer syntax (0002,0010)")
	}
	var inflated []byte
	if ts == tsDeflatedLE {
		// Checked before the parser inflates anything, so a deflate bomb
		// costs bounded work.
		var err error
		if inflated, err = inflateBounded(data, lim); err != nil {
			return dicomHeader{}, err
		}
	}
	if err := scanDICOM(data, ts, inflated); err != nil {
		return dicomHeader{}, err
	}
	ds, err := parseDICOM(data, dicom.SkipPixelData())
	if err != nil {
		return dicomHeader{}, err
	}
	h, err := parseHeader(ds)
	if err != nil {
		return dicomHeader{}, err
	}
	if err := lim.checkPixels(h.cols, h.rows, h.frames); err != nil {
		return dicomHeader{}, fmt.Errorf("dicom header: %w", err)
	}
	if err := checkTransferSyntax(h.ts); err != nil {
		return dicomHeader{}, err
	}
	return h, nil
}

// parseHeader reads and validates the image pixel module attributes.
func parseHeader(ds dicom.Dataset) (dicomHeader, error) {
	h := dicomHeader{
		frames: 1, samples: 1, slope: 1,
		photometric: "MONOCHROME2",
		ts:          firstString(ds, tag.TransferSyntaxUID),
		modality:    strings.ToUpper(firstString(ds, tag.Modality)),
	}
	var ok bool
	if h.rows, ok = firstInt(ds, tag.Rows); !ok {
		return h, formatErrorf("dicom: missing Rows (0028,0010)")
	}
	if h.cols, ok = firstInt(ds, tag.Columns); !ok {
		return h, formatErrorf("dicom: missing Columns (0028,0011)")
	}
	if h.bitsAllocated, ok = firstInt(ds, tag.BitsAllocated); !ok {
		return h, formatErrorf("dicom: missing BitsAllocated (0028,0100)")
	}
	if s := firstString(ds, tag.NumberOfFrames); s != "" {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return h, formatErrorf("dicom: NumberOfFrames %q is not an integer", s)
		}
		h.frames = n
	}
	h.bitsStored = h.bitsAllocated
	if v, ok := firstInt(ds, tag.BitsStored); ok && v > 0 && v <= h.bitsAllocated {
		h.bitsStored = v
	}
	if v, ok := firstInt(ds, tag.PixelRepresentation); ok {
		h.signed = v == 1
	}
	if v, ok := firstInt(ds, tag.SamplesPerPixel); ok {
		h.samples = v
	}
	h.planar, _ = firstInt(ds, tag.PlanarConfiguration)
	if s := firstString(ds, tag.PhotometricInterpretation); s != "" {
		h.photometric = strings.ToUpper(strings.TrimSpace(s))
	}
	if v, ok := firstFloat(ds, tag.RescaleSlope); ok && v != 0 {
		h.slope = v
	}
	h.intercept, _ = firstFloat(ds, tag.RescaleIntercept)
	c, okc := firstFloat(ds, tag.WindowCenter)
	w, okw := firstFloat(ds, tag.WindowWidth)
	if okc && okw && w > 0 {
		h.window, h.hasWindow = Window{Center: c, Width: w}, true
	}
	return h, validateHeader(h)
}

// validateHeader rejects attribute combinations the renderers cannot map.
func validateHeader(h dicomHeader) error {
	switch h.bitsAllocated {
	case 1, 8, 16, 32:
	default:
		return fmt.Errorf("%w: dicom BitsAllocated %d", ErrUnsupported, h.bitsAllocated)
	}
	if h.samples != 1 && h.samples != 3 {
		return fmt.Errorf("%w: dicom SamplesPerPixel %d", ErrUnsupported, h.samples)
	}
	switch h.photometric {
	case "MONOCHROME1", "MONOCHROME2":
		if h.samples != 1 {
			return formatErrorf("dicom: %s with %d samples per pixel", h.photometric, h.samples)
		}
	case "RGB", "YBR_FULL", "YBR_FULL_422":
		if h.samples != 3 {
			return formatErrorf("dicom: %s with %d samples per pixel", h.photometric, h.samples)
		}
	default:
		return fmt.Errorf("%w: dicom photometric interpretation %q", ErrUnsupported, h.photometric)
	}
	return nil
}

// checkTransferSyntax returns ErrUnsupported for syntaxes without a decoder.
func checkTransferSyntax(ts string) error {
	switch ts {
	case "", tsImplicitLE, tsExplicitLE, tsDeflatedLE, tsExplicitBE, tsJPEGBaseline:
		return nil
	}
	name := ts
	if u, err := uid.Lookup(ts); err == nil {
		name = fmt.Sprintf("%s (%s)", u.Name, ts)
	}
	return fmt.Errorf("%w: dicom transfer syntax %s is compressed with a codec this build cannot decode; convert it to explicit VR little endian (e.g. dcmdjpeg/gdcmconv --raw)", ErrUnsupported, name)
}

// pickFrame converts a 1-based frame number (0 = middle) to an index.
func pickFrame(frame, n int) (int, error) {
	if frame == 0 {
		return n / 2, nil
	}
	if frame < 0 || frame > n {
		return 0, fmt.Errorf("%w: frame %d requested, file has %d", ErrFrame, frame, n)
	}
	return frame - 1, nil
}

// selectFrame finds frame index in the parsed pixel data.
func selectFrame(ds dicom.Dataset, h dicomHeader, index int) (*frame.Frame, error) {
	el, err := ds.FindElementByTag(tag.PixelData)
	if err != nil {
		return nil, formatErrorf("dicom: no pixel data (7FE0,0010)")
	}
	pd, ok := el.Value.GetValue().(dicom.PixelDataInfo)
	if !ok {
		return nil, formatErrorf("dicom: pixel data has unexpected type %T", el.Value.GetValue())
	}
	if pd.ParseErr != nil {
		return nil, formatErrorf("dicom pixel data: %v", pd.ParseErr)
	}
	if pd.IsEncapsulated {
		if h.ts != tsJPEGBaseline {
			return nil, fmt.Errorf("%w: encapsulated pixel data with transfer syntax %q", ErrUnsupported, h.ts)
		}
		return encapsulatedFrame(pd.Frames, h.frames, index)
	}
	if len(pd.Frames) != h.frames {
		return nil, formatErrorf("dicom: %d frames of pixel data, NumberOfFrames says %d", len(pd.Frames), h.frames)
	}
	fr := pd.Frames[index]
	if fr == nil || fr.NativeData == nil {
		return nil, formatErrorf("dicom: frame %d has no native pixel data", index+1)
	}
	return fr, nil
}

// encapsulatedFrame maps fragments to frames: one fragment per frame, or,
// for single-frame files, all fragments concatenated.
func encapsulatedFrame(frags []*frame.Frame, n, index int) (*frame.Frame, error) {
	if len(frags) == n {
		return frags[index], nil
	}
	if n == 1 && len(frags) > 1 {
		var buf []byte
		for _, f := range frags {
			buf = append(buf, f.EncapsulatedData.Data...)
		}
		return &frame.Frame{Encapsulated: true, EncapsulatedData: frame.EncapsulatedFrame{Data: buf}}, nil
	}
	return nil, fmt.Errorf("%w: %d JPEG fragments for %d frames (multi-fragment frames)", ErrUnsupported, len(frags), n)
}

// maxDICOMElements bounds the top-level elements one parse may read. Real
// files have hundreds; junk (e.g. runs of zero bytes, which parse as empty
// (0000,0000) elements) would otherwise cost about a microsecond per 8 bytes.
const maxDICOMElements = 1 << 15

// parseDICOM parses data element by element, as dicom.Parse does, but stops
// with ErrTooLarge after maxDICOMElements top-level elements. Parser errors
// become FormatErrors.
func parseDICOM(data []byte, opts ...dicom.ParseOption) (dicom.Dataset, error) {
	p, err := dicom.NewParser(bytes.NewReader(data), int64(len(data)), nil, opts...)
	if err != nil {
		return dicom.Dataset{}, formatErrorf("dicom header: %v", err)
	}
	ds := dicom.Dataset{Elements: slices.Clone(p.GetMetadata().Elements)}
	for range maxDICOMElements {
		el, err := p.Next()
		if errors.Is(err, dicom.ErrorEndOfDICOM) || errors.Is(err, io.EOF) {
			return ds, nil
		}
		if err != nil {
			return dicom.Dataset{}, formatErrorf("dicom: %v", err)
		}
		ds.Elements = append(ds.Elements, el)
	}
	return dicom.Dataset{}, fmt.Errorf("%w: more than %d top-level DICOM elements", ErrTooLarge, maxDICOMElements)
}

// metaTransferSyntax reads the transfer syntax UID from the file meta group
// only ("" when there is none or it cannot be read).
func metaTransferSyntax(data []byte) string {
	p, err := dicom.NewParser(bytes.NewReader(data), int64(len(data)), nil, dicom.SkipPixelData())
	if err != nil || p == nil {
		return ""
	}
	return firstString(p.GetMetadata(), tag.TransferSyntaxUID)
}

// inflateBounded inflates the deflated data set (after the file meta
// group) and returns ErrTooLarge when it exceeds MaxBytes: a deflated file
// may do no more parsing work than an uncompressed one.
func inflateBounded(data []byte, lim Limits) ([]byte, error) {
	off, err := metaEnd(data)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(flate.NewReader(bytes.NewReader(data[off:])), lim.MaxBytes+1))
	if n > lim.MaxBytes {
		return nil, fmt.Errorf("%w: deflated DICOM inflates past %d bytes", ErrTooLarge, lim.MaxBytes)
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, formatErrorf("dicom deflate stream: %v", err)
	}
	return buf.Bytes(), nil
}

// metaEnd returns the offset of the first byte after the file meta group,
// from the (0002,0000) group length that must follow the preamble.
func metaEnd(data []byte) (int, error) {
	const at = 132 // preamble + "DICM"
	if len(data) < at+12 || binary.LittleEndian.Uint16(data[at:]) != 2 || binary.LittleEndian.Uint16(data[at+2:]) != 0 {
		return 0, formatErrorf("dicom: file meta group length (0002,0000) missing")
	}
	end := int64(at+12) + int64(binary.LittleEndian.Uint32(data[at+8:]))
	if end > int64(len(data)) {
		return 0, formatErrorf("dicom: file meta group length %d runs past the end of the file", end)
	}
	return int(end), nil
}
