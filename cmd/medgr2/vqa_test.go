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

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/eval"
	"github.com/medgr2/medgr2/models"
)

var (
	testKnee      = filepath.Join("..", "..", "..", "shared", "data", "omnimedvqa-real", "images", "knee", "val", "3", "9246518R.png")
	testRealItems = filepath.Join("..", "..", "..", "shared", "data", "omnimedvqa-real", "omnimedvqa_real.json")
)

// testBundle exports a small random VQA bundle.
func testBundle(t *testing.T, roles ...models.Role) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := models.Export(context.Background(), dir, models.DefaultConfig(0), models.ExportOptions{
		Tokenizer: filepath.Join("..", "..", "models", "testdata", "vqa_tokenizer.json"), Roles: roles, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestVQACommand(t *testing.T) {
	dir := testBundle(t)
	base := []string{"vqa", "--model", dir, "--device", "cpu", "--image", testKnee,
		"--question", "What is the KL grade?", "--option", "grade 0", "--option", "grade 2", "--option", "grade 3"}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"fast", base, []string{"answer: ", "probability: ", "A. grade 0", "C. grade 3"}},
		{"reason", append(base, "--mode", "reason", "--max-new-tokens", "6", "--temperature", "0.7"),
			[]string{"reasoning: ", "output: ", "6 tokens"}},
		{"text only", []string{"vqa", "--model", dir, "--question", "CT or MRI?", "--option", "CT", "--option", "MRI"},
			[]string{"answer: ", "B. MRI"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errw bytes.Buffer
			if err := run(context.Background(), c.args, &out, &errw); err != nil {
				t.Fatalf("%v\n%s", err, errw.String())
			}
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestVQACommandErrors(t *testing.T) {
	dir := testBundle(t)
	q := []string{"--question", "q?", "--option", "a", "--option", "b"}
	cases := []struct {
		name  string
		args  []string
		usage bool
		want  error
	}{
		{"no model", append([]string{"vqa"}, q...), true, nil},
		{"no question", []string{"vqa", "--model", dir, "--option", "a", "--option", "b"}, true, nil},
		{"one option", []string{"vqa", "--model", dir, "--question", "q?", "--option", "a"}, true, nil},
		{"bad mode", append([]string{"vqa", "--model", dir, "--mode", "slow"}, q...), true, nil},
		{"bad device", append([]string{"vqa", "--model", dir, "--device", "tpu"}, q...), true, nil},
		{"bad dtype", append([]string{"vqa", "--model", dir, "--dtype", "fp64"}, q...), true, nil},
		{"absent dtype variant", append([]string{"vqa", "--model", dir, "--dtype", "q4"}, q...), false, models.ErrDType},
		{"missing bundle", append([]string{"vqa", "--model", t.TempDir()}, q...), false, models.ErrMissingFile},
		{"missing image", append([]string{"vqa", "--model", dir, "--image", "nope.png"}, q...), false, os.ErrNotExist},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := run(context.Background(), c.args, &bytes.Buffer{}, &bytes.Buffer{})
			var u usageError
			if c.usage != errors.As(err, &u) {
				t.Fatalf("error %v: usage error %v, want %v", err, errors.As(err, &u), c.usage)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("error %v, want %v", err, c.want)
			}
		})
	}
}

func TestDoctorModel(t *testing.T) {
	for _, roles := range [][]models.Role{nil, {models.RoleReward}} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"doctor", "--device", "cpu", "--model", testBundle(t, roles...)}, &out, &bytes.Buffer{}); err != nil {
			t.Fatalf("roles %v: %v\n%s", roles, err, out.String())
		}
		for _, w := range []string{"bundle: medgr2-tiny", "decoder_model_merged.onnx", "forward pass: ", "bundle: OK"} {
			if !strings.Contains(out.String(), w) {
				t.Errorf("roles %v: output lacks %q:\n%s", roles, w, out.String())
			}
		}
	}
	broken := testBundle(t)
	if err := os.Remove(filepath.Join(broken, "tokenizer.json")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"doctor", "--model", broken}, &out, &bytes.Buffer{})
	if !errors.Is(err, models.ErrMissingFile) || !strings.Contains(out.String(), "FAIL") {
		t.Errorf("broken bundle: %v\n%s", err, out.String())
	}
}

func TestEvalModel(t *testing.T) {
	items, err := data.Load(testRealItems)
	if err != nil {
		t.Fatal(err)
	}
	items = items[:5]
	for i := range items {
		items[i].ImagePath = items[i].ImageFile() // absolute enough for a new file location
		if abs, err := filepath.Abs(items[i].ImagePath); err == nil {
			items[i].ImagePath = abs
		}
	}
	path := filepath.Join(t.TempDir(), "items.json")
	if err := data.Save(path, items); err != nil {
		t.Fatal(err)
	}
	dir := testBundle(t)
	for _, mode := range []string{"fast", "reason"} {
		var out, errw bytes.Buffer
		args := []string{"eval", "--data", path, "--model", dir, "--mode", mode,
			"--max-new-tokens", "4", "--out", t.TempDir()}
		if err := run(context.Background(), args, &out, &errw); err != nil {
			t.Fatalf("%s: %v\n%s", mode, err, errw.String())
		}
		if !strings.Contains(out.String(), filepath.Base(dir)) {
			t.Errorf("%s: report does not name the model:\n%s", mode, out.String())
		}
	}
}

// TestEvalImageSwap checks that eval --image-swap reports how far a
// model's answers move when each image is swapped for another modality's.
func TestEvalImageSwap(t *testing.T) {
	dir, out := testBundle(t), t.TempDir()
	all, err := data.Load(testRealItems)
	if err != nil {
		t.Fatal(err)
	}
	var items []data.Item // eight of each modality, images made absolute
	count := map[string]int{}
	for _, it := range all {
		if count[it.ModalityType] < 8 {
			count[it.ModalityType]++
			abs, err := filepath.Abs(it.ImageFile())
			if err != nil {
				t.Fatal(err)
			}
			it.ImagePath, it.Root = abs, ""
			items = append(items, it)
		}
	}
	file := filepath.Join(out, "items.jsonl")
	if err := data.Save(file, items); err != nil {
		t.Fatal(err)
	}
	var so bytes.Buffer
	args := []string{"eval", "--model", dir, "--device", "cpu", "--data", file, "--split", "",
		"--image-swap", "--out", out}
	if err := run(context.Background(), args, &so, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(so.String(), "image swap (") {
		t.Errorf("output lacks the image swap line:\n%s", so.String())
	}
	raw, err := os.ReadFile(filepath.Join(out, "sensitivity.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s eval.Sensitivity
	if err := json.Unmarshal(raw, &s); err != nil || s.N != len(items) || s.MeanTV < 0 || s.MeanTV > 1 {
		t.Errorf("sensitivity.json %s: %+v, %v", raw, s, err)
	}
}
