// Package preprocessing turns encoded medical images into the tensors a
// Qwen2-VL-style vision encoder reads.
//
// # Decoding
//
// Decode and DecodeFile accept PNG, JPEG, GIF, BMP, TIFF, WebP and DICOM
// Part 10 files. Before any pixel buffer is allocated they check the
// encoded size (Limits.MaxBytes) and the pixel count read from the header
// (Limits.MaxPixels: width×height from image.DecodeConfig, or
// Rows×Columns×NumberOfFrames for DICOM), so decompression bombs are
// refused cheaply. Every failure is typed: ErrTooLarge, ErrUnsupported,
// ErrEmpty, ErrFrame, or a FormatError for corrupt input; a panic inside a
// third-party decoder is recovered and reported as a FormatError. The fuzz
// targets FuzzDecode, FuzzDecodeDICOM and FuzzDecodeReducedJPEG hold the
// package to that.
//
// With Options.ReduceFor set to the model's Config, a JPEG much larger
// than the model's input decodes at 1/2, 1/4 or 1/8 scale in the DCT
// domain (package internal/jpegscale, a fork of image/jpeg): each decoded
// pixel is the mean of the stored pixels it covers, within one grey
// level, the decoded image stays at least twice the resize target on
// both sides, and the patch grid is unchanged. The limits then bound the
// reduced image, and the stored size is capped at ReducedStoredPixels
// times MaxPixels. TestReducedJPEGDeviation and BenchmarkReducedJPEG
// measure what it changes and saves; docs/2026-12-07-jpeg-reduced-decode.md
// records a run of both.
//
// # DICOM
//
// DICOM goes through github.com/suyashkumar/dicom for parsing; the
// rendering is this package's: stored values are masked to BitsStored,
// sign-extended for PixelRepresentation 1, mapped through Rescale
// Slope/Intercept, windowed with the DICOM linear VOI function and
// inverted for MONOCHROME1. The window is, in order: Options.Window, the
// file's first Window Center/Width (also looked up in enhanced multi-frame
// functional groups), DefaultCTWindow for CT, the identity for 8-bit data,
// or the frame's min-max. Multi-frame files decode one frame (Options.Frame,
// 1-based; the middle one by default). Native, deflated and baseline-JPEG
// transfer syntaxes decode; other compressed syntaxes return ErrUnsupported
// naming the syntax. Before parsing, every element length is checked
// against the bytes that remain and deflated data sets are inflated under
// MaxBytes, because the parser allocates declared lengths up front.
//
// # Qwen2-VL processing
//
// Config mirrors Hugging Face's preprocessor_config.json (same JSON keys).
// Config.Process converts to RGB (grey replicated, alpha over white),
// resizes to Config.SmartResize's size (Hugging Face's smart_resize:
// multiples of PatchSize×MergeSize = 28, area within [MinPixels,
// MaxPixels]) with a bicubic resizer (by default a port of Pillow's, what
// Hugging Face runs: within one grey level of it), rescales by 1/255,
// normalises with the
// CLIP mean and std, and lays the patches out exactly as
// Qwen2VLImageProcessor does: pixel_values [num_patches, 3·2·14·14 = 1176]
// with each 2×2 merge group contiguous, and grid_thw (1, h/14, w/14). The
// image takes NumPatches/MergeSize² <|image_pad|> tokens. ProcessBatch
// concatenates several images along the patch axis.
//
// # Augmentations
//
// Augment draws random views of an image for self-supervised pretraining
// (train.PretrainVision): a random resized crop, a small rotation,
// brightness, contrast and gamma jitter, Gaussian blur and noise, all
// drawn from the caller's *rand.Rand, so the same seed gives the same
// views. Left-right flips are off by default (they change laterality:
// a chest X-ray's heart side, a fundus's eye). NewSource decodes nothing:
// it holds an already decoded image as float planes, shrunk once.
//
// # Usage
//
//	img, info, err := preprocessing.DecodeFile("scan.dcm", preprocessing.DefaultLimits())
//	if err != nil {
//		return err // test with errors.Is(err, preprocessing.ErrTooLarge) etc. or errors.As with a FormatError
//	}
//	log.Printf("%s %dx%d window %+v", info.Format, info.Width, info.Height, info.Window)
//	px, err := preprocessing.DefaultConfig().Process(img)
//	if err != nil {
//		return err
//	}
//	// px.Values → "pixel_values" [px.NumPatches, px.PatchDim]
//	// px.GridTHW → one row of "grid_thw"; px.ImageTokens() image pad tokens
package preprocessing
