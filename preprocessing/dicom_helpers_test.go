package preprocessing

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/frame"
	"github.com/suyashkumar/dicom/pkg/tag"
)

// dcmSpec describes a synthetic DICOM file for tests. Empty strings omit
// the corresponding attribute.
type dcmSpec struct {
	rows, cols, frames    int
	bitsAlloc, bitsStored int
	signed                bool
	samples, planar       int
	photometric, modality string
	ts                    string
	slope, intercept      string
	center, width         string
	// pixels holds each frame's raw samples (native syntaxes).
	pixels [][]int
	// encapsulated holds each fragment's bytes (compressed syntaxes).
	encapsulated [][]byte
}

// buildDICOM writes spec as a DICOM Part 10 file with the dicom library's
// writer, so the bytes are what a conformant writer produces.
func buildDICOM(tb testing.TB, s dcmSpec) []byte {
	tb.Helper()
	if s.ts == "" {
		s.ts = tsExplicitLE
	}
	if s.samples == 0 {
		s.samples = 1
	}
	if s.photometric == "" {
		s.photometric = "MONOCHROME2"
	}
	if s.bitsStored == 0 {
		s.bitsStored = s.bitsAlloc
	}
	rep := 0
	if s.signed {
		rep = 1
	}
	var els []*dicom.Element
	add := func(t tag.Tag, v any) {
		el, err := dicom.NewElement(t, v)
		if err != nil {
			tb.Fatalf("element %v: %v", t, err)
		}
		els = append(els, el)
	}
	add(tag.MediaStorageSOPClassUID, []string{"1.2.840.10008.5.1.4.1.1.7"})
	add(tag.MediaStorageSOPInstanceUID, []string{"1.2.3.4.5"})
	add(tag.TransferSyntaxUID, []string{s.ts})
	if s.modality != "" {
		add(tag.Modality, []string{s.modality})
	}
	add(tag.SamplesPerPixel, []int{s.samples})
	add(tag.PhotometricInterpretation, []string{s.photometric})
	if s.samples == 3 {
		add(tag.PlanarConfiguration, []int{s.planar})
	}
	if s.frames > 0 {
		add(tag.NumberOfFrames, []string{strconv.Itoa(s.frames)})
	}
	add(tag.Rows, []int{s.rows})
	add(tag.Columns, []int{s.cols})
	add(tag.BitsAllocated, []int{s.bitsAlloc})
	add(tag.BitsStored, []int{s.bitsStored})
	add(tag.HighBit, []int{s.bitsStored - 1})
	add(tag.PixelRepresentation, []int{rep})
	for _, kv := range []struct {
		t tag.Tag
		v string
	}{{tag.WindowCenter, s.center}, {tag.WindowWidth, s.width}, {tag.RescaleIntercept, s.intercept}, {tag.RescaleSlope, s.slope}} {
		if kv.v != "" {
			add(kv.t, []string{kv.v})
		}
	}
	add(tag.PixelData, pixelInfo(s))
	if s.encapsulated != nil {
		px := els[len(els)-1]
		px.ValueLength, px.RawValueRepresentation = tag.VLUndefinedLength, "OB"
	}
	var buf bytes.Buffer
	if err := dicom.Write(&buf, dicom.Dataset{Elements: els}, dicom.SkipVRVerification()); err != nil {
		tb.Fatalf("write dicom: %v", err)
	}
	return buf.Bytes()
}

// pixelInfo builds the PixelData value for spec.
func pixelInfo(s dcmSpec) dicom.PixelDataInfo {
	var pd dicom.PixelDataInfo
	if s.encapsulated != nil {
		pd.IsEncapsulated = true
		for _, b := range s.encapsulated {
			pd.Frames = append(pd.Frames, &frame.Frame{Encapsulated: true, EncapsulatedData: frame.EncapsulatedFrame{Data: b}})
		}
		return pd
	}
	if s.pixels == nil {
		pd.IntentionallySkipped = true // an empty PixelData element
		return pd
	}
	n := s.rows * s.cols
	for _, px := range s.pixels {
		var nf frame.INativeFrame
		switch s.bitsAlloc {
		case 8:
			f := frame.NewNativeFrame[uint8](8, s.rows, s.cols, n, s.samples)
			for i, v := range px {
				f.RawData[i] = uint8(v)
			}
			nf = f
		default:
			f := frame.NewNativeFrame[uint16](16, s.rows, s.cols, n, s.samples)
			for i, v := range px {
				f.RawData[i] = uint16(v)
			}
			nf = f
		}
		pd.Frames = append(pd.Frames, &frame.Frame{NativeData: nf})
	}
	return pd
}

// ramp returns n values start, start+step, ….
func ramp(n, start, step int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = start + i*step
	}
	return out
}
