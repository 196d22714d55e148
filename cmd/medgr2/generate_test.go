package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
)

// defaultModels is the committed default bundles' folder, from this one.
var defaultModels = filepath.Join("..", "..", defaultBundles)

// testXRay is a real chest X-ray of the shared data.
var testXRay = filepath.Join("..", "..", "..", "shared", "data", "pneumoniamnist", "test", "pneumoniamnist_test_00001.png")

// TestGenerateThenScoreDefaultBundles runs `generate` on the default
// generator (found through $MEDGR2_MODELS, as in the container) and
// `score --items` on what it wrote with the default reward bundle.
func TestGenerateThenScoreDefaultBundles(t *testing.T) {
	t.Setenv(envModels, defaultModels)
	ctx := context.Background()
	var out, errw bytes.Buffer
	err := run(ctx, []string{"generate", "--image", testXRay, "--n", "6", "--device", "cpu", "--max-new-tokens", "96",
		"--metadata", "modality=X-Ray", "--metadata", "dataset=PneumoniaMNIST", "--metadata", "id=cxr"}, &out, &errw)
	if err != nil {
		t.Fatalf("generate: %v\n%s", err, errw.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if out.Len() == 0 || !strings.Contains(errw.String(), "wrote "+strconv.Itoa(len(lines))+" of 6 samples") {
		t.Fatalf("generate wrote %d lines:\n%s\nstderr:\n%s", len(lines), out.String(), errw.String())
	}
	abs, err := filepath.Abs(testXRay)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		var it data.Item
		if err := json.Unmarshal([]byte(l), &it); err != nil {
			t.Fatal(err)
		}
		if err := it.Validate(); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if it.ModalityType != "X-Ray" || it.Dataset != "PneumoniaMNIST" || !strings.HasPrefix(it.QuestionID, "cxr-") ||
			it.ImagePath != abs || it.Extra[reasoningField] == nil {
			t.Fatalf("item %s", l)
		}
	}
	items := filepath.Join(t.TempDir(), "gen.jsonl")
	if err := os.WriteFile(items, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"score", "--items", items, "--device", "cpu", "--batch", "4"}, &out, &errw); err != nil {
		t.Fatalf("score --items: %v", err)
	}
	scored := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(scored) != len(lines) {
		t.Fatalf("%d scores for %d items:\n%s", len(scored), len(lines), out.String())
	}
	for _, l := range scored {
		var s scoredItem
		if err := json.Unmarshal([]byte(l), &s); err != nil || !strings.HasPrefix(s.QuestionID, "cxr-") || math.IsNaN(float64(s.Score)) {
			t.Fatalf("score line %q: %v", l, err)
		}
	}
}

// TestScoreOneSample scores one sample with the default reward bundle; the
// score must equal the one --items gives the same sample.
func TestScoreOneSample(t *testing.T) {
	t.Setenv(envModels, defaultModels)
	ctx := context.Background()
	var out bytes.Buffer
	err := run(ctx, []string{"score", "--device", "cpu", "--image", testXRay, "--question", "What does this chest X-ray show?",
		"--option", "Normal lungs", "--option", "Pneumonia", "--answer", "b", "--reasoning", "The lungs show consolidation."}, &out, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	single, err := parseScoreLine(out.String())
	if err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	abs, err := filepath.Abs(testXRay)
	if err != nil {
		t.Fatal(err)
	}
	it := map[string]string{"question_id": "q1", "dataset": "d", "question_type": "q", "modality_type": "X-Ray",
		"question": "What does this chest X-ray show?", "option_A": "Normal lungs", "option_B": "Pneumonia",
		"gt_answer": "Pneumonia", "image_path": abs, reasoningField: "The lungs show consolidation."}
	raw, err := json.Marshal(it)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "one.jsonl")
	if err := os.WriteFile(file, append(raw, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"score", "--device", "cpu", "--items", file}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var s scoredItem
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(s.Score)-single) > 1e-3 {
		t.Fatalf("--items score %v, single sample %v", s.Score, single)
	}
}

// parseScoreLine reads the "score: S" line.
func parseScoreLine(s string) (float64, error) {
	f, ok := strings.CutPrefix(strings.TrimSpace(s), "score: ")
	if !ok {
		return 0, errors.New("no \"score: \" line")
	}
	return strconv.ParseFloat(f, 64)
}

func TestGenerateScoreErrors(t *testing.T) {
	t.Setenv(envModels, defaultModels)
	dir := t.TempDir()
	badReasoning := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(badReasoning, []byte(`{"question_id":"q","question":"Q?","option_A":"a","option_B":"b","gt_answer":"a","image_path":"","reasoning":3}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	one := []string{"--question", "Q?", "--option", "a", "--option", "b"}
	usage := errors.New("usage")
	tests := []struct {
		name string
		args []string
		want error // usage for a usageError
	}{
		{"generate without image", []string{"generate"}, usage},
		{"generate n 0", []string{"generate", "--image", testXRay, "--n", "0"}, usage},
		{"generate unknown metadata", []string{"generate", "--image", testXRay, "--metadata", "colour=red"}, usage},
		{"generate metadata without =", []string{"generate", "--image", testXRay, "--metadata", "modality"}, usage},
		{"generate extra argument", []string{"generate", "--image", testXRay, "x"}, usage},
		{"generate missing image", []string{"generate", "--image", filepath.Join(dir, "none.png"), "--device", "cpu"}, fs.ErrNotExist},
		{"generate with a VQA bundle dir that is not one", []string{"generate", "--image", testXRay, "--model", dir}, models.ErrMissingFile},
		{"score nothing", []string{"score"}, usage},
		{"score items and sample", []string{"score", "--items", badReasoning, "--question", "Q?"}, usage},
		{"score one option", []string{"score", "--question", "Q?", "--option", "a", "--answer", "A"}, usage},
		{"score answer out of range", append([]string{"score", "--answer", "C"}, one...), usage},
		{"score no answer", append([]string{"score"}, one...), usage},
		{"score batch 0", []string{"score", "--items", badReasoning, "--batch", "0"}, usage},
		{"score missing items", []string{"score", "--items", filepath.Join(dir, "none.jsonl")}, fs.ErrNotExist},
		{"score missing image", append([]string{"score", "--answer", "A", "--device", "cpu", "--image", filepath.Join(dir, "none.png")}, one...), fs.ErrNotExist},
		{"score with a VQA bundle", append([]string{"score", "--answer", "A", "--device", "cpu", "--model", filepath.Join(defaultModels, "vqa")}, one...), models.ErrRole},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args, &bytes.Buffer{}, &bytes.Buffer{})
			var u usageError
			if tc.want == usage {
				if !errors.As(err, &u) {
					t.Fatalf("err %v, want a usage error", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	err := run(context.Background(), []string{"score", "--items", badReasoning, "--device", "cpu"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `"reasoning" field`) {
		t.Fatalf("reasoning that is not a string: %v", err)
	}
}
