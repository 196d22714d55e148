package tokenizer

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns wraps one of them, so
// callers can branch with errors.Is.
var (
	// ErrFormat reports a tokenizer.json that is not valid JSON or lacks a
	// required field.
	ErrFormat = errors.New("tokenizer: malformed tokenizer.json")
	// ErrUnsupported reports a tokenizer.json component (model type,
	// pre-tokenizer, normalizer, decoder, option) this package does not
	// implement exactly, so it refuses to guess.
	ErrUnsupported = errors.New("tokenizer: unsupported component")
	// ErrUnknownID reports an id outside the vocabulary in Decode.
	ErrUnknownID = errors.New("tokenizer: unknown token id")
	// ErrUnknownToken reports text that the model cannot represent (a
	// character missing from the vocabulary with no unk token or byte
	// fallback).
	ErrUnknownToken = errors.New("tokenizer: token not in vocabulary")
	// ErrBadPrompt reports a chat prompt that cannot be rendered.
	ErrBadPrompt = errors.New("tokenizer: invalid prompt")
	// ErrTrain reports training input or options that cannot produce a
	// tokenizer.
	ErrTrain = errors.New("tokenizer: cannot train")
)

// ComponentError names the tokenizer.json component that failed to load.
type ComponentError struct {
	Component string // "model", "normalizer", "pre_tokenizer", "decoder", "added_tokens"
	Type      string // the component's "type" field, if any
	Err       error  // ErrFormat or ErrUnsupported, possibly wrapped
}

// Error implements error.
func (e *ComponentError) Error() string {
	if e.Type == "" {
		return fmt.Sprintf("tokenizer: %s: %v", e.Component, e.Err)
	}
	return fmt.Sprintf("tokenizer: %s %q: %v", e.Component, e.Type, e.Err)
}

// Unwrap returns the underlying error.
func (e *ComponentError) Unwrap() error { return e.Err }
