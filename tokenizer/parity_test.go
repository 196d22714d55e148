package tokenizer

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/text/unicode/norm"
)

// Paths of the fixtures that `make fixtures` (scripts/fetch-fixtures.sh)
// installs; tests fail loudly when they are missing.
const (
	qwen3JSON    = "../third_party/fixtures/qwen3/tokenizer.json"
	qwen3Config  = "../third_party/fixtures/qwen3/tokenizer_config.json"
	parityScript = "../scripts/tokenizer-parity/parity.cjs"
	corpusPath   = "testdata/parity_corpus.json"
)

// reference is what transformers.js returns for a corpus.
type reference struct {
	IDs         [][]int  `json:"ids"`
	Decoded     []string `json:"decoded"`
	DecodedSkip []string `json:"decoded_skip"`
}

// requireFile fails the test when a fixture is missing.
func requireFile(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("fixture %s missing (run `make fixtures`): %v", path, err)
	}
}

// loadCorpus reads the committed parity corpus.
func loadCorpus(t testing.TB) []string {
	t.Helper()
	data, err := os.ReadFile(corpusPath)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	if err := json.Unmarshal(data, &texts); err != nil {
		t.Fatal(err)
	}
	return texts
}

// runReference encodes texts with transformers.js through the Node script.
func runReference(t testing.TB, tokPath, cfgPath string, texts []string) reference {
	t.Helper()
	requireFile(t, parityScript)
	requireFile(t, "../third_party/tokenizer-parity/node_modules/@huggingface/transformers/package.json")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for the parity test: %v", err)
	}
	in, err := json.Marshal(texts)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, parityScript, tokPath, cfgPath)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("parity script: %v\n%s", err, stderr.String())
	}
	var ref reference
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatalf("parity script output: %v", err)
	}
	if len(ref.IDs) != len(texts) {
		t.Fatalf("parity script returned %d results for %d texts", len(ref.IDs), len(texts))
	}
	return ref
}

// checkParity compares tok with the reference on every text and checks the
// decode round trip; it reports counts and the first mismatches.
func checkParity(t *testing.T, tok *Tokenizer, texts []string, ref reference) {
	t.Helper()
	var idOK, decOK, skipOK, roundOK, tokens int
	for i, text := range texts {
		ids, err := tok.Encode(text)
		if err != nil {
			t.Errorf("Encode(%q): %v", text, err)
			continue
		}
		tokens += len(ids)
		if equalInts(ids, ref.IDs[i]) {
			idOK++
		} else if i-idOK < 20 { // report the first 20 mismatches
			t.Errorf("ids differ for %q:\n got  %v\n want %v", text, ids, ref.IDs[i])
		}
		dec, err := tok.Decode(ref.IDs[i], false)
		if err == nil && dec == ref.Decoded[i] {
			decOK++
		} else {
			t.Errorf("Decode differs for %q: got %q (%v), want %q", text, dec, err, ref.Decoded[i])
		}
		skip, err := tok.Decode(ref.IDs[i], true)
		if err == nil && skip == ref.DecodedSkip[i] {
			skipOK++
		} else {
			t.Errorf("Decode(skip) differs for %q: got %q (%v), want %q", text, skip, err, ref.DecodedSkip[i])
		}
		if back, err := tok.Decode(ids, false); err == nil && back == norm.NFC.String(text) {
			roundOK++
		} else {
			t.Errorf("round trip of %q gave %q (%v)", text, back, err)
		}
	}
	n := len(texts)
	t.Logf("%d texts, %d tokens: ids %d/%d identical, decode %d/%d, decode(skip special) %d/%d, round trip %d/%d",
		n, tokens, idOK, n, decOK, n, skipOK, n, roundOK, n)
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParityQwen3(t *testing.T) {
	tok := loadQwen3(t)
	texts := loadCorpus(t)
	if len(texts) < 2000 {
		t.Fatalf("corpus has %d strings, want ≥ 2000", len(texts))
	}
	ref := runReference(t, qwen3JSON, qwen3Config, texts)
	checkParity(t, tok, texts, ref)
}

// dataCorpus is the bundled text TrainBPE learns from in tests.
func dataCorpus(t testing.TB) []string {
	t.Helper()
	texts, err := ReadCorpus(context.Background(),
		"../../shared/data/omnimedvqa-text/omnimedvqa_text_sample.json",
		"../../shared/data/omnimedvqa-real/omnimedvqa_real.json",
		"../../shared/data/bccd/collection.json",
		"../../shared/data/busi/collection.json",
		"../../shared/data/pneumoniamnist/collection.json")
	if err != nil {
		t.Fatal(err)
	}
	return texts
}

func TestParityTrained(t *testing.T) {
	tok, err := TrainBPE(context.Background(), dataCorpus(t), TrainOptions{VocabSize: 3000})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := tok.Save(path); err != nil {
		t.Fatal(err)
	}
	texts := loadCorpus(t)
	ref := runReference(t, path, "-", texts)
	checkParity(t, tok, texts, ref)
}

func TestParityWordPiece(t *testing.T) {
	const path = "testdata/wordpiece_tokenizer.json"
	tok, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("testdata/wordpiece_texts.json")
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	if err := json.Unmarshal(data, &texts); err != nil {
		t.Fatal(err)
	}
	ref := runReference(t, path, "-", texts)
	for i, text := range texts {
		ids, err := tok.Encode(text)
		if err != nil || !equalInts(ids, ref.IDs[i]) {
			t.Errorf("Encode(%q) = %v, %v; want %v", text, ids, err, ref.IDs[i])
		}
		for _, skip := range []bool{false, true} {
			want := ref.Decoded[i]
			if skip {
				want = ref.DecodedSkip[i]
			}
			if got, err := tok.Decode(ref.IDs[i], skip); err != nil || got != want {
				t.Errorf("Decode(%v, %v) = %q, %v; want %q", ref.IDs[i], skip, got, err, want)
			}
		}
	}
}
