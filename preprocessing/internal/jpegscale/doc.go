// Package jpegscale decodes JPEG images at 1/1, 1/2, 1/4 or 1/8 of their
// size in the DCT block domain, so that a large photograph bound for a
// small model input never exists at full size.
//
// It is a fork of the standard library's image/jpeg decoder (Go 1.26;
// BSD licence, in LICENSE beside this file: reader.go, scan.go,
// huffman.go and idct.go keep the Go Authors' copyright header, and each
// change is marked "jpegscale:"). The parsing, Huffman decoding,
// progressive refinement, restart markers and colour handling are
// image/jpeg's; at scale 1 Decode returns exactly what image/jpeg.Decode
// returns (tested bit for bit). scale.go adds the reduction: each 8×8
// block is written as (8/s)×(8/s) samples, each the mean of the samples
// it covers (see Decode for the exact contract and its one-level bound),
// every component at the output resolution, so the result is never
// chroma-subsampled.
//
// The package registers nothing with the image package; preprocessing
// calls it for JPEGs much larger than the model's input
// (preprocessing.Options.ReduceFor).
package jpegscale
