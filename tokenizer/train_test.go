package tokenizer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestTrainDeterministic(t *testing.T) {
	texts := dataCorpus(t)
	if testing.Short() {
		texts = texts[:2000]
	}
	a, err := TrainBPE(context.Background(), texts, TrainOptions{VocabSize: 2000})
	if err != nil {
		t.Fatal(err)
	}
	b, err := TrainBPE(context.Background(), texts, TrainOptions{VocabSize: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.JSON(), b.JSON()) {
		t.Fatal("two training runs on the same corpus differ")
	}
	if a.VocabSize() != 2000 {
		t.Errorf("VocabSize = %d, want 2000", a.VocabSize())
	}
	special := QwenVLSpecialTokens()
	for i, s := range special {
		id, ok := a.TokenID(s.Content)
		if !ok || id != 2000-len(special)+i {
			t.Errorf("TokenID(%q) = %d, %v; want %d", s.Content, id, ok, 2000-len(special)+i)
		}
	}
	// The trained model compresses in-domain text well below one token per byte.
	ids, err := a.Encode("What modality is used for this image? Computed Tomography")
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) > 14 {
		t.Errorf("in-domain sentence took %d tokens: %v", len(ids), ids)
	}
}

func TestTrainErrors(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		texts []string
		opts  TrainOptions
		want  error
	}{
		{"vocab too small", context.Background(), []string{"abc"}, TrainOptions{VocabSize: 200}, ErrTrain},
		{"negative min frequency", context.Background(), []string{"abc"}, TrainOptions{MinFrequency: -1}, ErrTrain},
		{"empty corpus", context.Background(), nil, TrainOptions{}, ErrTrain},
		{"only special tokens", context.Background(), []string{"<|im_start|><|im_end|>"}, TrainOptions{}, ErrTrain},
		{"cancelled", cancelled, []string{"abc"}, TrainOptions{}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := TrainBPE(tt.ctx, tt.texts, tt.opts); !errors.Is(err, tt.want) {
				t.Fatalf("TrainBPE: got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestTrainStopsAtMinFrequency(t *testing.T) {
	tok, err := TrainBPE(context.Background(), []string{"abab abab", "xyz"}, TrainOptions{VocabSize: 1000, MinFrequency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() >= 1000 {
		t.Fatalf("VocabSize = %d; training should stop when pairs get rare", tok.VocabSize())
	}
	ids, _ := tok.Encode("abab")
	if len(ids) != 1 {
		t.Errorf("Encode(abab) = %v, want one token", ids)
	}
}

func TestReadCorpus(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	items := write("items.json", `[{"question": "Q1?", "option_A": "a", "option_B": "b", "gt_answer": "a", "image_path": "x.png"}]`)
	coll := write("collection.json", `{"name": "busi", "modality": "ultrasound", "labels": {"1": "benign", "0": "normal"}}`)
	lines := write("notes.txt", "first line\n\n  second line  \n")
	bad := write("bad.json", `"just a string"`)
	got, err := ReadCorpus(context.Background(), items, coll, lines)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Q1?", "a", "b", "a", "busi", "ultrasound", "normal", "benign", "first line", "second line"}
	if len(got) != len(want) {
		t.Fatalf("ReadCorpus = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ReadCorpus[%d] = %q, want %q", i, got[i], want[i])
		}
	}
	if _, err := ReadCorpus(context.Background(), bad); !errors.Is(err, ErrTrain) {
		t.Errorf("bad JSON: got %v, want ErrTrain", err)
	}
	if _, err := ReadCorpus(context.Background(), filepath.Join(dir, "missing.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want os.ErrNotExist", err)
	}
	if _, err := ReadCorpus(context.Background(), dir); !errors.Is(err, ErrTrain) {
		t.Errorf("folder with bad.json: got %v, want ErrTrain", err)
	}
}
