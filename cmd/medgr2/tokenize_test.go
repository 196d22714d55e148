package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/tokenizer"
)

// trainTestTokenizer trains a small tokenizer through the CLI and returns
// its path.
func trainTestTokenizer(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "tokenizer.json")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"tokenize", "train", "--out", out, "--vocab", "600",
		"../../../shared/data/omnimedvqa-real/omnimedvqa_real.json"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("tokenize train: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "600 ids") {
		t.Fatalf("tokenize train output %q", stdout.String())
	}
	return out
}

func TestTokenizeEncodeDecode(t *testing.T) {
	path := trainTestTokenizer(t)
	tok, err := tokenizer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"What modality is used?", "a<|image_pad|>b", ""}
	in, _ := json.Marshal(texts)
	var enc bytes.Buffer
	if err := encodeJSON(tok, bytes.NewReader(in), &enc); err != nil {
		t.Fatal(err)
	}
	var ids [][]int
	if err := json.Unmarshal(enc.Bytes(), &ids); err != nil || len(ids) != len(texts) {
		t.Fatalf("encode output %q: %v", enc.String(), err)
	}
	var dec bytes.Buffer
	if err := decodeJSON(tok, bytes.NewReader(enc.Bytes()), &dec, false); err != nil {
		t.Fatal(err)
	}
	var back []string
	if err := json.Unmarshal(dec.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	for i := range texts {
		if back[i] != texts[i] {
			t.Errorf("round trip %d: %q, want %q", i, back[i], texts[i])
		}
	}
}

func TestTokenizeErrors(t *testing.T) {
	path := trainTestTokenizer(t)
	tok, err := tokenizer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var u usageError
	if err := encodeJSON(tok, strings.NewReader(`{"not": "an array"}`), &bytes.Buffer{}); !errors.As(err, &u) {
		t.Errorf("encode of an object: got %v, want usageError", err)
	}
	if err := decodeJSON(tok, strings.NewReader(`["text"]`), &bytes.Buffer{}, false); !errors.As(err, &u) {
		t.Errorf("decode of strings: got %v, want usageError", err)
	}
	if err := decodeJSON(tok, strings.NewReader(`[[1, 999999]]`), &bytes.Buffer{}, false); !errors.Is(err, tokenizer.ErrUnknownID) {
		t.Errorf("decode of a bad id: got %v, want ErrUnknownID", err)
	}
	cases := [][]string{
		{"tokenize"},
		{"tokenize", "--tokenizer", path, "extra"},
		{"tokenize", "train", "--out", filepath.Join(t.TempDir(), "x.json")},
		{"tokenize", "train", "--vocab", "10", "--out", filepath.Join(t.TempDir(), "x.json"), path},
	}
	for _, args := range cases {
		if err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); exitCode(err) != 2 {
			t.Errorf("%v: got %v (exit %d), want a usage error", args, err, exitCode(err))
		}
	}
	if err := run(context.Background(), []string{"tokenize", "--tokenizer", filepath.Join(t.TempDir(), "none.json")},
		&bytes.Buffer{}, &bytes.Buffer{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing tokenizer: got %v", err)
	}
}
