package server

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	_ "image/jpeg" // register JPEG for image.Decode
	_ "image/png"  // register PNG for image.Decode
	"strings"
	"time"

	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/server/model"
)

// DecodeFunc decodes image bytes into the image a model receives. The
// server calls Config.DecodeImage, which defaults to PreprocessingDecoder
// (PNG, JPEG, GIF, BMP, TIFF, WebP and DICOM with the project's safety
// limits; model.Image.Decoded only). A decoder that also runs the model's
// image processor sets model.Image.Pixels (backend.Models.DecodeImage). An
// error wrapping ErrImageTooLarge answers 413; any other error answers
// 400 invalid_image.
type DecodeFunc func([]byte) (model.Image, error)

// PreprocessingDecoder returns a DecodeFunc on preprocessing.Decode: PNG,
// JPEG, GIF, BMP, TIFF, WebP and DICOM, refusing input over lim's bytes,
// pixels (width·height·frames) or decoded bytes, the last two read from
// the header before any pixel buffer is allocated. Zero limits take
// preprocessing's defaults.
// preprocessing.ErrTooLarge becomes ErrImageTooLarge (413); unsupported,
// corrupt (preprocessing.FormatError) and empty images keep their
// preprocessing error, which the server reports as 400 invalid_image.
func PreprocessingDecoder(lim preprocessing.Limits) DecodeFunc {
	return PreprocessingDecoderWith(preprocessing.Options{Limits: lim})
}

// PreprocessingDecoderWith is PreprocessingDecoder with full decode
// options: with Options.ReduceFor set to the models' image processor, a
// JPEG much larger than the model's input size decodes at 1/2, 1/4 or
// 1/8 scale, and the limits bound the reduced image
// (preprocessing.Options.ReduceFor).
func PreprocessingDecoderWith(opts preprocessing.Options) DecodeFunc {
	return func(b []byte) (model.Image, error) {
		img, _, err := preprocessing.DecodeWith(b, opts)
		if errors.Is(err, preprocessing.ErrTooLarge) {
			return model.Image{}, fmt.Errorf("%w: %w", ErrImageTooLarge, err)
		}
		return model.Image{Decoded: img}, err
	}
}

// decodedImage is an image with the hash of its bytes.
type decodedImage struct {
	img  model.Image
	hash string // hex SHA-256 of the raw bytes
}

// imageHash returns the hex SHA-256 of raw image bytes, the image part of
// every cache key.
func imageHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// parseImageField turns a base64 string or data URI into image bytes,
// checking the size before decoding base64.
func (s *Server) parseImageField(field, v string) ([]byte, error) {
	if v == "" {
		return nil, badField(field, "required")
	}
	if strings.HasPrefix(v, "data:") {
		meta, data, ok := strings.Cut(v, ",")
		if !ok || !strings.HasSuffix(meta, ";base64") {
			return nil, badField(field, "data URI must be base64 encoded (data:<mime>;base64,<data>)")
		}
		v = data
	}
	if base64.StdEncoding.DecodedLen(len(v)) > s.cfg.MaxImageBytes+3 {
		return nil, fmt.Errorf("%s: %w: over %d bytes", field, ErrImageTooLarge, s.cfg.MaxImageBytes)
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(v); err != nil {
			return nil, badField(field, "not valid base64: %v", err)
		}
	}
	return b, nil
}

// decodeImage decodes raw bytes with the configured decoder; hash is
// imageHash(b), which the caller has already computed for its cache key.
func (s *Server) decodeImage(field string, b []byte, hash string) (decodedImage, error) {
	if len(b) > s.cfg.MaxImageBytes {
		return decodedImage{}, fmt.Errorf("%s: %w: %d bytes, limit %d", field, ErrImageTooLarge, len(b), s.cfg.MaxImageBytes)
	}
	t := time.Now()
	img, err := s.cfg.DecodeImage(b)
	if img.DecodeTime == 0 && img.Pixels == nil { // a decoder that did not time itself
		img.DecodeTime = time.Since(t)
	}
	if err != nil {
		if errors.Is(err, ErrImageTooLarge) {
			return decodedImage{}, fmt.Errorf("%s: %w", field, err)
		}
		return decodedImage{}, &ImageError{Field: field, Err: err}
	}
	return decodedImage{img: img, hash: hash}, nil
}

// imageFromField parses and decodes a base64 or data URI image field.
func (s *Server) imageFromField(field, v string) (decodedImage, error) {
	b, err := s.parseImageField(field, v)
	if err != nil {
		return decodedImage{}, err
	}
	return s.decodeImage(field, b, imageHash(b))
}
