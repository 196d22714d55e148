package models

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/medgr2/medgr2/tokenizer"
)

// TestSamplingAnswerTemperature checks that ReasonOptions.AnswerTemperature
// becomes a temperature override after the "<answer>" token, and that a
// tokenizer which splits "<answer>" is refused rather than ignored.
func TestSamplingAnswerTemperature(t *testing.T) {
	zero := float32(0)
	cases := []struct {
		name      string
		tokenizer string
		opts      ReasonOptions
		override  bool  // a TemperatureAfter entry is expected
		err       error // expected error
	}{
		{"unset", "testdata/vqa_tokenizer.json", ReasonOptions{Temperature: 0.8}, false, nil},
		{"greedy letter", "testdata/vqa_tokenizer.json", ReasonOptions{Temperature: 0.8, AnswerTemperature: &zero}, true, nil},
		{"answer tag split into pieces", splitAnswerTokenizer(t), ReasonOptions{AnswerTemperature: &zero}, false, ErrAnswerToken},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := tokenizer.Load(c.tokenizer)
			if err != nil {
				t.Fatal(err)
			}
			v := &VLM{tok: tok}
			g, err := v.sampling(c.opts, 3, nil)
			if !errors.Is(err, c.err) {
				t.Fatalf("error %v, want %v", err, c.err)
			}
			if err != nil {
				return
			}
			if g.Temperature != c.opts.Temperature || g.Seed != c.opts.Seed+3 {
				t.Errorf("temperature %v seed %d, want %v and %d", g.Temperature, g.Seed, c.opts.Temperature, c.opts.Seed+3)
			}
			if !c.override {
				if len(g.TemperatureAfter) != 0 {
					t.Errorf("unexpected overrides %v", g.TemperatureAfter)
				}
				return
			}
			ids, err := tok.Encode(AnswerOpen)
			if err != nil || len(ids) != 1 {
				t.Fatalf("%q encodes to %v (%v)", AnswerOpen, ids, err)
			}
			if got, ok := g.TemperatureAfter[ids[0]]; !ok || got != 0 || len(g.TemperatureAfter) != 1 {
				t.Errorf("overrides %v, want {%d: 0}", g.TemperatureAfter, ids[0])
			}
		})
	}
}

// splitAnswerTokenizer writes a copy of the test tokenizer whose
// "<answer>" is no longer a token of its own (the byte-level BPE then
// encodes it in pieces) and returns its path.
func splitAnswerTokenizer(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/vqa_tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.ReplaceAll(b, []byte(`"<answer>"`), []byte(`"<answer_open>"`))
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
