package preprocessing

import (
	"encoding/binary"
	"fmt"

	"github.com/suyashkumar/dicom/pkg/tag"
)

// The dicom library allocates each element's value (make([]byte, length))
// before reading it, so a 200-byte file that declares a 4 GiB element makes
// it allocate and zero 4 GiB. scanLengths walks the element headers first
// and refuses any element longer than the bytes that remain.

// Explicit VRs whose length field is 4 bytes (after 2 reserved bytes).
var longVRs = map[string]bool{
	"OB": true, "OD": true, "OF": true, "OL": true, "OV": true, "OW": true,
	"SQ": true, "SV": true, "UC": true, "UN": true, "UR": true, "UT": true, "UV": true,
}

const undefinedLength = 0xFFFFFFFF

// scanLengths checks the element headers of a data set encoded with bo and
// implicit VR. It descends into sequences and items (defined or undefined
// length) and skips encapsulated fragments by their length. A trailing
// partial header is left to the parser to report.
func scanLengths(b []byte, bo binary.ByteOrder, implicit bool) error {
	pos, fragments := 0, false
	for len(b)-pos >= 8 {
		group, elem := bo.Uint16(b[pos:]), bo.Uint16(b[pos+2:])
		if group == 0xFFFE { // item, item delimiter, sequence delimiter
			vl := bo.Uint32(b[pos+4:])
			pos += 8
			switch {
			case elem == 0xE0DD:
				fragments = false
			case elem == 0xE000 && fragments:
				if err := fits(b, pos, vl, group, elem); err != nil {
					return err
				}
				pos += int(vl)
			}
			continue
		}
		vr, vl, hdr, ok := elementHeader(b[pos:], bo, implicit, group, elem)
		if !ok {
			return nil
		}
		pos += hdr
		switch {
		case vl == undefinedLength:
			// Undefined-length SQ/UN hold items of elements; OB/OW (pixel
			// data) hold raw fragments.
			fragments = vr != "SQ" && vr != "UN"
		case vr == "SQ":
			// Defined-length sequence: its items follow inline.
			if err := fits(b, pos, vl, group, elem); err != nil {
				return err
			}
		default:
			if err := fits(b, pos, vl, group, elem); err != nil {
				return err
			}
			pos += int(vl)
		}
	}
	return nil
}

// elementHeader decodes the VR, value length and header size of the
// element at the start of b; ok is false when b is too short.
func elementHeader(b []byte, bo binary.ByteOrder, implicit bool, group, elem uint16) (vr string, vl uint32, hdr int, ok bool) {
	if implicit {
		vr = "UN"
		if info, err := tag.Find(tag.Tag{Group: group, Element: elem}); err == nil && len(info.VRs) > 0 {
			vr = info.VRs[0]
		}
		return vr, bo.Uint32(b[4:]), 8, true
	}
	vr = string(b[4:6])
	if !longVRs[vr] {
		return vr, uint32(bo.Uint16(b[6:])), 8, true
	}
	if len(b) < 12 {
		return "", 0, 0, false
	}
	return vr, bo.Uint32(b[8:]), 12, true
}

// fits reports a FormatError when vl bytes do not remain after pos.
func fits(b []byte, pos int, vl uint32, group, elem uint16) error {
	if int64(vl) > int64(len(b)-pos) {
		return formatErrorf("dicom element (%04X,%04X) declares %d bytes but only %d remain", group, elem, vl, len(b)-pos)
	}
	return nil
}

// scanDICOM checks the file meta group and the data set of a Part 10 file
// whose transfer syntax is ts; inflated holds the inflated data set for the
// deflated syntax.
func scanDICOM(data []byte, ts string, inflated []byte) error {
	end, err := scanMeta(data)
	if err != nil {
		return err
	}
	switch ts {
	case tsDeflatedLE:
		return scanLengths(inflated, binary.LittleEndian, false)
	case tsImplicitLE:
		return scanLengths(data[end:], binary.LittleEndian, true)
	case tsExplicitBE:
		return scanLengths(data[end:], binary.BigEndian, false)
	default: // explicit little endian, and every compressed syntax
		return scanLengths(data[end:], binary.LittleEndian, false)
	}
}

// scanMeta checks the file meta group's value lengths (see scanLengths)
// and returns the offset where the data set starts. It runs before the
// DICOM parser reads the meta group, which allocates each value at its
// declared length: a 4 GB length in a 200-byte file would otherwise cost
// a 4 GB allocation.
func scanMeta(data []byte) (int, error) {
	end, err := metaEnd(data)
	if err != nil {
		return 0, err
	}
	if err := scanLengths(data[132:end], binary.LittleEndian, false); err != nil {
		return 0, fmt.Errorf("file meta group: %w", err)
	}
	return end, nil
}
