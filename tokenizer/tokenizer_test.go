package tokenizer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dlclark/regexp2"
)

// tinyByteLevel is a minimal byte-level BPE tokenizer.json with a vocab of
// just "a", "b", "ab" (and Ġ for space) plus one added token.
const tinyByteLevel = `{
 "added_tokens": [{"id": 4, "content": "<x>", "special": true}],
 "normalizer": null,
 "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
 "decoder": {"type": "ByteLevel"},
 "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3}, "merges": ["a b"]}
}`

// qwen3Once loads the Qwen3 fixture once per test binary (about a second).
var qwen3Once = sync.OnceValues(func() (*Tokenizer, error) { return Load(qwen3JSON) })

// loadQwen3 returns the shared Qwen3 tokenizer; Tokenizer is safe for
// concurrent use, so tests share it.
func loadQwen3(t testing.TB) *Tokenizer {
	t.Helper()
	requireFile(t, qwen3JSON)
	tok, err := qwen3Once()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestLoadErrors(t *testing.T) {
	replace := func(old, new string) string { return strings.Replace(tinyByteLevel, old, new, 1) }
	tests := []struct {
		name string
		json string
		want error
	}{
		{"not json", "{", ErrFormat},
		{"no model", `{"added_tokens": []}`, ErrFormat},
		{"unigram model", `{"model": {"type": "Unigram", "vocab": []}}`, ErrUnsupported},
		{"merge not in vocab", replace(`"a b"`, `"a c"`), ErrFormat},
		{"merge with three parts", replace(`["a b"]`, `[["a","b","c"]]`), ErrFormat},
		{"merge without space", replace(`"a b"`, `"ab"`), ErrFormat},
		{"empty vocab", replace(`{"a": 0, "b": 1, "ab": 2, "Ġ": 3}`, `{}`), ErrFormat},
		{"dropout", replace(`"type": "BPE",`, `"type": "BPE", "dropout": 0.1,`), ErrUnsupported},
		{"subword prefix", replace(`"type": "BPE",`, `"type": "BPE", "continuing_subword_prefix": "##",`), ErrUnsupported},
		{"unk not in vocab", replace(`"type": "BPE",`, `"type": "BPE", "unk_token": "<unk>",`), ErrFormat},
		{"normalizer", replace(`"normalizer": null`, `"normalizer": {"type": "Precompiled"}`), ErrUnsupported},
		{"pre-tokenizer", replace(`{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}`, `{"type": "Metaspace"}`), ErrUnsupported},
		{"bad regex", replace(`{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}`,
			`{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(("}, "behavior": "Isolated"}, {"type": "ByteLevel"}]}`), ErrUnsupported},
		{"split behavior", replace(`{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}`,
			`{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"String": " "}, "behavior": "Contiguous"}, {"type": "ByteLevel"}]}`), ErrUnsupported},
		{"split invert", replace(`{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}`,
			`{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"String": " "}, "behavior": "Isolated", "invert": true}, {"type": "ByteLevel"}]}`), ErrUnsupported},
		{"byte level not last", replace(`{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}`,
			`{"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"}, {"type": "Split", "pattern": {"String": " "}, "behavior": "Isolated"}]}`), ErrUnsupported},
		{"decoder", replace(`"decoder": {"type": "ByteLevel"}`, `"decoder": {"type": "Metaspace"}`), ErrUnsupported},
		{"empty added token", replace(`"content": "<x>"`, `"content": ""`), ErrFormat},
		{"wordpiece without vocab", `{"model": {"type": "WordPiece", "unk_token": "[UNK]"}}`, ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes([]byte(tt.json))
			if !errors.Is(err, tt.want) {
				t.Fatalf("LoadBytes: got %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing): got %v, want os.ErrNotExist", err)
	}
}

func TestTinyEncodeDecode(t *testing.T) {
	tok, err := LoadBytes([]byte(tinyByteLevel))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text    string
		ids     []int
		wantErr error
	}{
		{"ab", []int{2}, nil},
		{"aab b", []int{0, 2, 3, 1}, nil},
		{"a<x>b", []int{0, 4, 1}, nil},
		{"", []int{}, nil},
		{"abc", nil, ErrUnknownToken},
	}
	for _, tt := range tests {
		ids, err := tok.Encode(tt.text)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Encode(%q) error = %v, want %v", tt.text, err, tt.wantErr)
			continue
		}
		if tt.wantErr == nil && !equalInts(ids, tt.ids) {
			t.Errorf("Encode(%q) = %v, want %v", tt.text, ids, tt.ids)
		}
	}
	if _, err := tok.Decode([]int{0, 99}, false); !errors.Is(err, ErrUnknownID) {
		t.Errorf("Decode(99): got %v, want ErrUnknownID", err)
	}
	if _, err := tok.Decode([]int{-1}, false); !errors.Is(err, ErrUnknownID) {
		t.Errorf("Decode(-1): got %v, want ErrUnknownID", err)
	}
	if got, _ := tok.Decode([]int{0, 4, 1}, true); got != "ab" {
		t.Errorf("Decode skip special = %q, want %q", got, "ab")
	}
	if tok.VocabSize() != 5 {
		t.Errorf("VocabSize = %d, want 5", tok.VocabSize())
	}
}

// TestSpecialTokensInsideText covers the sugarme bug this package routes
// around: special tokens glued to byte-level text must not eat the text.
func TestSpecialTokensInsideText(t *testing.T) {
	tok := loadQwen3(t)
	pad, _ := tok.TokenID(ImagePad)
	tests := []struct {
		text string
		want []int
	}{
		{"a<|image_pad|>b", []int{64, pad, 65}},
		{"<|image_pad|><|image_pad|>", []int{pad, pad}},
		{"<|image_pad", []int{27, 91, 1805, 30290}},
	}
	for _, tt := range tests {
		got, err := tok.Encode(tt.text)
		if err != nil || !equalInts(got, tt.want) {
			t.Errorf("Encode(%q) = %v, %v; want %v", tt.text, got, err, tt.want)
		}
	}
}

// TestQwenSplitterMatchesRegexp2 checks the hand-written splitter against
// regexp2 running the very pattern from the Qwen tokenizer.json.
func TestQwenSplitterMatchesRegexp2(t *testing.T) {
	re := regexpSplitter{re: regexp2.MustCompile(QwenPattern, regexp2.Unicode)}
	texts := append(loadCorpus(t), "it'ſ", "IT'S", "a\u3000 b", "\u00a0\u00a0x", "x\t\t", "x \r\n \r\ny", "'ll'")
	for _, s := range texts {
		want, err := re.matches(nil, s)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := qwenSplitter{}.matches(nil, s)
		if len(got) != len(want) {
			t.Errorf("split(%q): got %d pieces, want %d", s, len(got), len(want))
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("split(%q) piece %d: got %q, want %q", s, i, s[got[i][0]:got[i][1]], s[want[i][0]:want[i][1]])
				break
			}
		}
	}
}

func TestLossyUTF8(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ok", "ok"},
		{"\xe2\x82", "\uFFFD"},                 // truncated 3-byte sequence: one U+FFFD
		{"\xff\xfe", "\uFFFD\uFFFD"},           // two invalid bytes
		{"a\xf0\x9f\x98b", "a\uFFFDb"},         // truncated 4-byte sequence
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"}, // surrogate: each byte
	}
	for _, tt := range tests {
		if got := lossyUTF8([]byte(tt.in)); got != tt.want {
			t.Errorf("lossyUTF8(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDecodeSplitCharacter(t *testing.T) {
	tok := loadQwen3(t)
	ids, err := tok.Encode("\U000E0041") // TAG LATIN CAPITAL LETTER A: byte tokens
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) < 2 {
		t.Fatalf("U+E0041 encodes to one token %v; the test needs a split character", ids)
	}
	got, err := tok.Decode(ids[:1], false)
	if err != nil || !strings.Contains(got, "\uFFFD") {
		t.Errorf("Decode(first byte of 😀) = %q, %v; want U+FFFD", got, err)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	tok := loadQwen3(t)
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := tok.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	const text = "<|im_start|>user\nWhat modality is this? 胸部X光<|im_end|>"
	a, _ := tok.Encode(text)
	b, _ := back.Encode(text)
	if !equalInts(a, b) || back.VocabSize() != tok.VocabSize() {
		t.Fatalf("reloaded tokenizer differs: %v vs %v", a, b)
	}
	if err := tok.Save(filepath.Join(t.TempDir(), "no", "such", "dir", "t.json")); err == nil {
		t.Fatal("Save into a missing folder succeeded")
	}
}

func TestTokenIDAndAddedTokens(t *testing.T) {
	tok := loadQwen3(t)
	tests := []struct {
		tok string
		id  int
	}{{"<|endoftext|>", 151643}, {"<|im_start|>", 151644}, {"<|image_pad|>", 151655}, {"<think>", 151667}, {"Ġthe", 279}}
	for _, tt := range tests {
		if id, ok := tok.TokenID(tt.tok); !ok || id != tt.id {
			t.Errorf("TokenID(%q) = %d, %v; want %d", tt.tok, id, ok, tt.id)
		}
		if s, ok := tok.Token(tt.id); !ok || s != tt.tok {
			t.Errorf("Token(%d) = %q, %v; want %q", tt.id, s, ok, tt.tok)
		}
	}
	if _, ok := tok.TokenID("<|no_such|>"); ok {
		t.Error("TokenID of an unknown token succeeded")
	}
	if got := tok.VocabSize(); got != 151669 {
		t.Errorf("VocabSize = %d, want 151669", got)
	}
	added := tok.AddedTokens()
	if len(added) == 0 || added[0].Content != "<|endoftext|>" {
		t.Errorf("AddedTokens()[0] = %+v", added[0])
	}
}

// TestConcurrentEncode is an invariance test: encoding in parallel (shared
// cache) gives the same ids as alone.
func TestConcurrentEncode(t *testing.T) {
	tok := loadQwen3(t)
	texts := loadCorpus(t)[:400]
	want := make([][]int, len(texts))
	for i, s := range texts {
		want[i], _ = tok.Encode(s)
	}
	fresh, err := Load(qwen3JSON) // a cold cache
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, len(texts))
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, s := range texts {
				if got, _ := fresh.Encode(s); !equalInts(got, want[i]) {
					errs <- s
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Errorf("concurrent Encode(%q) differs", s)
	}
}
