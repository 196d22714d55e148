//go:build ignore

// mkfixtures derives the small DICOM fixtures in this folder from the real
// test files shipped in the github.com/suyashkumar/dicom v1.1.0 module zip:
//
//	go run preprocessing/testdata/mkfixtures.go "$(go env GOMODCACHE)/github.com/suyashkumar/dicom@v1.1.0/testdata" preprocessing/testdata
//
// Files 1.dcm, 3.dcm and 6.dcm are copied unchanged; 4.dcm (a 1760×2140
// MONOCHROME1 chest CR, 7.5 MB) is decimated 8× in both directions and 5.dcm
// (an enhanced multi-frame CT) 4×, every other attribute kept.
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/suyashkumar/dicom"
	"github.com/suyashkumar/dicom/pkg/frame"
	"github.com/suyashkumar/dicom/pkg/tag"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: mkfixtures SRC_DIR DST_DIR")
	}
	src, dst := os.Args[1], os.Args[2]
	for from, to := range map[string]string{"1.dcm": "pet_acrin_flt_breast.dcm", "3.dcm": "mr_prostate.dcm", "6.dcm": "deflated.dcm"} {
		if err := copyFile(filepath.Join(src, from), filepath.Join(dst, to)); err != nil {
			log.Fatal(err)
		}
	}
	if err := decimate(filepath.Join(src, "4.dcm"), filepath.Join(dst, "cr_chest_monochrome1.dcm"), 8); err != nil {
		log.Fatal(err)
	}
	if err := decimate(filepath.Join(src, "5.dcm"), filepath.Join(dst, "ct_multiframe.dcm"), 4); err != nil {
		log.Fatal(err)
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// decimate keeps every k-th row and column of every 16-bit frame.
func decimate(from, to string, k int) error {
	ds, err := dicom.ParseFile(from, nil)
	if err != nil {
		return err
	}
	rowsEl, _ := ds.FindElementByTag(tag.Rows)
	colsEl, _ := ds.FindElementByTag(tag.Columns)
	pixEl, _ := ds.FindElementByTag(tag.PixelData)
	rows, cols := dicom.MustGetInts(rowsEl.Value)[0], dicom.MustGetInts(colsEl.Value)[0]
	nr, nc := rows/k, cols/k
	pd := dicom.MustGetPixelDataInfo(pixEl.Value)
	out := dicom.PixelDataInfo{}
	for _, f := range pd.Frames {
		raw, ok := f.NativeData.RawDataSlice().([]uint16)
		if !ok {
			return fmt.Errorf("%s: want 16-bit native frames", from)
		}
		nf := frame.NewNativeFrame[uint16](16, nr, nc, nr*nc, 1)
		for y := 0; y < nr; y++ {
			for x := 0; x < nc; x++ {
				nf.RawData[y*nc+x] = raw[(y*k)*cols+x*k]
			}
		}
		out.Frames = append(out.Frames, &frame.Frame{NativeData: nf})
	}
	rowsEl.Value, _ = dicom.NewValue([]int{nr})
	colsEl.Value, _ = dicom.NewValue([]int{nc})
	pixEl.Value, _ = dicom.NewValue(out)
	f, err := os.Create(to)
	if err != nil {
		return err
	}
	if err := dicom.Write(f, ds); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
