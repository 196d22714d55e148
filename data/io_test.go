package data

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedData is the project's real data folder, relative to this package.
const sharedData = "../../shared/data"

func TestLoadRealOmniMedVQATextSample(t *testing.T) {
	path := filepath.Join(sharedData, "omnimedvqa-text", "omnimedvqa_text_sample.json")
	var skipped []*ItemError
	items, err := Load(path, SkipInvalid(func(e *ItemError) { skipped = append(skipped, e) }))
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	if got := len(items) + len(skipped); got != 2400 {
		t.Fatalf("accounted for %d items (%d loaded, %d skipped), want 2400", got, len(items), len(skipped))
	}
	for _, e := range skipped {
		t.Logf("skipped: %v", e)
	}
	st := ComputeStats(items)
	if len(st.ByModality) != 8 {
		t.Fatalf("modalities = %v, want 8", st.ByModality)
	}
	for _, it := range items {
		if _, err := it.AnswerIndex(); err != nil {
			t.Fatalf("%s: %v", it.QuestionID, err)
		}
	}
}

func TestLoadRealOmniMedVQAWithImages(t *testing.T) {
	path := filepath.Join(sharedData, "omnimedvqa-real", "omnimedvqa_real.json")
	items, err := Load(path, CheckImages())
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	if len(items) != 767 {
		t.Fatalf("loaded %d items, want 767", len(items))
	}
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodItem = `{"question_id":"g","question":"Q?","option_A":"x","option_B":"y","gt_answer":"y","image_path":"img.png"}`

func TestLoadMalformed(t *testing.T) {
	cases := []struct {
		name, file, body string
		opts             []LoadOption
		want             error
		index            int // -1: a file-level error, not an *ItemError
	}{
		{"bad JSON array", "a.json", `[` + goodItem + `, {"question_id": }]`, nil, ErrBadJSON, -1},
		{"unterminated array", "a.json", `[` + goodItem, nil, ErrBadJSON, -1},
		{"empty file", "a.json", "  \n", nil, ErrBadJSON, -1},
		{"bad JSONL line", "a.jsonl", goodItem + "\n{nope\n", nil, ErrBadJSON, 1},
		{"wrong field type", "a.jsonl", `{"question_id":"w","question":"Q","option_A":1}`, nil, ErrBadJSON, 0},
		{"missing image", "a.json", `[` + goodItem + `]`, []LoadOption{CheckImages()}, ErrImageMissing, 0},
		{"answer not among options", "a.json", `[` + strings.Replace(goodItem, `"gt_answer":"y"`, `"gt_answer":"z"`, 1) + `]`, nil, ErrAnswerNotInOptions, 0},
		{"zero options", "a.jsonl", `{"question_id":"z","question":"Q?","gt_answer":"y"}`, nil, ErrNoOptions, 0},
		{"option gap", "a.jsonl", `{"question_id":"z","question":"Q?","option_A":"x","option_B":"y","option_D":"w","gt_answer":"y"}`, nil, ErrOptionGap, 0},
		{"duplicate id", "a.jsonl", goodItem + "\n" + goodItem, nil, ErrDuplicateID, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, c.file, c.body)
			_, err := Load(p, c.opts...)
			if !errors.Is(err, c.want) {
				t.Fatalf("Load() error = %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q does not name the file", err)
			}
			ie, isItem := IsItemError(err)
			if c.index < 0 {
				if isItem {
					t.Fatalf("want a file-level error, got item error %v", err)
				}
				return
			}
			if !isItem || ie.Index != c.index {
				t.Fatalf("want *ItemError at index %d, got %v", c.index, err)
			}
		})
	}
}

func TestLoadSkipInvalid(t *testing.T) {
	body := "[" + goodItem + `,{"question_id":"bad","question":"Q?","option_A":"x","option_B":"y","gt_answer":"q"},` +
		strings.Replace(goodItem, `"g"`, `"g2"`, 1) + "]"
	p := writeFile(t, "mixed.json", body)
	var skipped []*ItemError
	items, err := Load(p, SkipInvalid(func(e *ItemError) { skipped = append(skipped, e) }))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || len(skipped) != 1 || skipped[0].Index != 1 || skipped[0].ID != "bad" {
		t.Fatalf("items=%d skipped=%v", len(items), skipped)
	}
	if items[0].Root != filepath.Dir(p) {
		t.Fatalf("Root = %q, want %q", items[0].Root, filepath.Dir(p))
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
