package preprocessing

import (
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
)

// metaFile returns a DICOM preamble, "DICM" and the given file meta group
// bytes, padded with zeros.
func metaFile(meta ...[]byte) []byte {
	b := append(make([]byte, 128), "DICM"...)
	for _, m := range meta {
		b = append(b, m...)
	}
	return append(b, make([]byte, 64)...)
}

// explicitLong is an explicit-VR little-endian element header with a
// 4-byte length (OB, UT, …) declaring vl bytes.
func explicitLong(group, elem uint16, vr string, vl uint32) []byte {
	b := binary.LittleEndian.AppendUint16(nil, group)
	b = binary.LittleEndian.AppendUint16(b, elem)
	b = append(b, vr...)
	b = append(b, 0, 0)
	return binary.LittleEndian.AppendUint32(b, vl)
}

// TestDICOMMetaLengthsCheckedFirst feeds file meta groups that declare
// values of gigabytes in files of a few hundred bytes (inputs the fuzzer
// found: the parser used to allocate the declared length while reading
// the meta group, before any length was checked). Each must fail with a
// FormatError and allocate little.
func TestDICOMMetaLengthsCheckedFirst(t *testing.T) {
	groupLength := func(n uint32) []byte { // (0002,0000) UL n
		b := []byte{2, 0, 0, 0, 'U', 'L', 4, 0}
		return binary.LittleEndian.AppendUint32(b, n)
	}
	cases := []struct {
		name string
		data []byte
	}{
		{"group length element with a long VR", metaFile(explicitLong(2, 0, "UT", 0xFE8FF6DB))},
		{"meta element longer than the file", metaFile(groupLength(12), explicitLong(2, 1, "OB", 0xF0000000))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err := DecodeDICOM(c.data, Options{})
			runtime.ReadMemStats(&after)
			var fe FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a FormatError", err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("allocated %d bytes for a %d-byte file", n, len(c.data))
			}
		})
	}
}
