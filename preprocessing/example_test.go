package preprocessing_test

import (
	"errors"
	"fmt"

	"github.com/medgr2/medgr2/preprocessing"
)

// Decode a real multi-frame CT file and lay it out for a Qwen2-VL vision
// encoder.
func Example() {
	img, info, err := preprocessing.DecodeFile("testdata/ct_multiframe.dcm", preprocessing.DefaultLimits())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s %s %dx%d frame %d/%d window %+v (%s)\n", info.Format, info.Modality,
		info.Width, info.Height, info.Frame, info.Frames, info.Window, info.WindowSource)

	px, err := preprocessing.DefaultConfig().Process(img)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("pixel_values [%d, %d], grid_thw %v, %d image tokens\n",
		px.NumPatches, px.PatchDim, px.GridTHW, px.ImageTokens())
	// Output:
	// dicom CT 128x128 frame 2/2 window {Center:49 Width:102} (file)
	// pixel_values [100, 1176], grid_thw [1 10 10], 25 image tokens
}

// Bad input yields typed errors a server can map to a status code.
func ExampleDecode_errors() {
	_, _, err := preprocessing.Decode([]byte("not an image"), preprocessing.Limits{})
	fmt.Println(errors.Is(err, preprocessing.ErrUnsupported))

	_, _, err = preprocessing.Decode(make([]byte, 1024), preprocessing.Limits{MaxBytes: 100})
	fmt.Println(errors.Is(err, preprocessing.ErrTooLarge))
	// Output:
	// true
	// true
}

// SmartResize reproduces Hugging Face's smart_resize.
func ExampleConfig_SmartResize() {
	h, w, _ := preprocessing.DefaultConfig().SmartResize(480, 640)
	fmt.Println(h, w)
	// Output: 476 644
}
