package models

import (
	"errors"
	"fmt"
)

// Sentinel errors; every error from Load and Export wraps one of them.
var (
	ErrBadConfig    = errors.New("models: invalid architecture config")
	ErrBadManifest  = errors.New("models: invalid manifest")
	ErrMissingFile  = errors.New("models: missing file")
	ErrBadONNX      = errors.New("models: unreadable ONNX file")
	ErrSignature    = errors.New("models: ONNX inputs/outputs do not match the manifest")
	ErrBadWeights   = errors.New("models: invalid weights")
	ErrBadTokenizer = errors.New("models: invalid tokenizer.json")
)

// BundleError names the bundle and the file a problem was found in.
type BundleError struct {
	Dir  string // bundle folder
	File string // file inside the bundle, relative to Dir ("" for the bundle as a whole)
	Err  error  // wraps one of the sentinels
}

// Error formats the error as "models: bundle DIR: FILE: …".
func (e *BundleError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("models: bundle %s: %v", e.Dir, e.Err)
	}
	return fmt.Sprintf("models: bundle %s: %s: %v", e.Dir, e.File, e.Err)
}

// Unwrap returns the underlying error.
func (e *BundleError) Unwrap() error { return e.Err }
