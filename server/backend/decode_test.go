package backend_test

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"math"
	"testing"

	xdraw "golang.org/x/image/draw"

	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/backend"
)

// smearJPG is a real 640×480 BCCD blood smear photograph.
const smearJPG = "../../../shared/data/bccd/images/BloodImage_00000.jpg"

// TestDecodeImageReducesLargeJPEG checks that DecodeImage(nil) decodes a
// JPEG much larger than the bundle's input at reduced scale
// (preprocessing.Options.ReduceFor with ImageConfig): a real BCCD
// photograph scaled to 3000×2000 gives the same patch grid as through the
// full decode, with pixel values within 0.5 grey levels on average and 4
// at most, and passes a pixel limit its full decode fails.
func TestDecodeImageReducesLargeJPEG(t *testing.T) {
	m := open(t, backend.Options{VQA: bundles.vqa, PixelCacheBytes: -1})
	cfg := m.ImageConfig()
	if cfg == nil {
		t.Fatal("no shared image processor")
	}
	src, _, err := preprocessing.DecodeFile(smearJPG, preprocessing.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	large := image.NewRGBA(image.Rect(0, 0, 3000, 2000))
	xdraw.CatmullRom.Scale(large, large.Bounds(), src, src.Bounds(), xdraw.Src, nil)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, large, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	reduced, err := m.DecodeImage(nil)(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	full, err := m.DecodeImage(server.PreprocessingDecoder(preprocessing.Limits{}))(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	rp, fp := reduced.Pixels, full.Pixels
	if rp == nil || fp == nil || rp.GridTHW != fp.GridTHW || len(rp.Values) != len(fp.Values) {
		t.Fatalf("reduced %+v, full %+v: want the same grid", rp, fp)
	}
	var sum, worst float64
	block := fp.PatchDim / 3 // the values of one channel in a patch
	for i := range fp.Values {
		d := math.Abs(float64(rp.Values[i]-fp.Values[i])) * cfg.ImageStd[(i%fp.PatchDim)/block] * 255
		sum += d
		worst = max(worst, d)
	}
	if sum == 0 {
		t.Error("DecodeImage(nil) gave exactly the full decode's pixels: the JPEG was not reduced")
	}
	if mean := sum / float64(len(fp.Values)); mean > 0.5 || worst > 4 {
		t.Errorf("reduced decode differs from the full one by %.3f grey levels on average, %.1f at most", mean, worst)
	}
	lim := preprocessing.Limits{MaxPixels: 3000*2000 - 1}
	if _, err := m.DecodeImage(server.PreprocessingDecoder(lim))(buf.Bytes()); !errors.Is(err, server.ErrImageTooLarge) {
		t.Fatalf("full decode over the pixel limit: %v", err)
	}
	if _, err := m.DecodeImage(server.PreprocessingDecoderWith(preprocessing.Options{Limits: lim, ReduceFor: cfg}))(buf.Bytes()); err != nil {
		t.Fatalf("reduced decode within the pixel limit: %v", err)
	}
}
