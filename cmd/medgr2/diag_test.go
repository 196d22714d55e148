package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/builder"
	"github.com/medgr2/medgr2/pipeline"
	"github.com/medgr2/medgr2/train"
)

// TestDiagUsage checks help, unknown diagnostics and missing flags.
func TestDiagUsage(t *testing.T) {
	cases := []struct {
		args     []string
		wantCode int
		want     string // in stdout, stderr or the error
	}{
		{[]string{"diag"}, 2, "want `medgr2 diag"},
		{[]string{"diag", "-h"}, 0, "letter"},
		{[]string{"diag", "nope"}, 2, "unknown diagnostic"},
		{[]string{"diag", "oracle", "-h"}, 0, "-tokenizer"},
		{[]string{"diag", "reward", "--help"}, 0, "-candidates"},
		{[]string{"diag", "oracle", "--data", "x"}, 2, "--tokenizer is required"},
		{[]string{"diag", "reward", "--bundles", "x"}, 2, "--candidates is required"},
		{[]string{"diag", "generator", "--candidates", "x", "--bundles", "y"}, 2, "--truth is required"},
		{[]string{"diag", "letter", "--items", "x"}, 2, "--bundles is required"},
		{[]string{"diag", "letter", "--nope"}, 2, "nope"},
		{[]string{"diag", "letter", "--items", "missing.jsonl", "--bundles", "x"}, 1, "missing.jsonl"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			code, msg := 0, ""
			if err != nil {
				code, msg = exitCode(err), err.Error()
			}
			if code != tc.wantCode {
				t.Fatalf("exit status %d (err %v), want %d", code, err, tc.wantCode)
			}
			if !strings.Contains(stdout.String()+stderr.String()+msg, tc.want) {
				t.Errorf("output lacks %q:\n%s%s%s", tc.want, stdout.String(), stderr.String(), msg)
			}
		})
	}
}

// TestDiagLetterAndReward runs the letter, reward and generator
// diagnostics on a small random bundle and real items given by explicit
// paths.
func TestDiagLetterAndReward(t *testing.T) {
	ctx := context.Background()
	items, err := data.Load(testRealItems)
	if err != nil {
		t.Fatal(err)
	}
	items = items[:4]
	b := smallGRPOBundle(t)
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"diag", "letter", "--items", testRealItems, "--max", "4", "--bundles", b.Dir}, &stdout, &stderr); err != nil {
		t.Fatalf("letter: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "most likely in") || !strings.Contains(stdout.String(), "of 4 (") {
		t.Errorf("letter output: %s", stdout.String())
	}

	rm, err := train.RewardBundle(ctx, b, filepath.Join(t.TempDir(), "rm"), 1)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i, it := range items {
		it.ImagePath = it.ImageFile() // relative to the working folder, as a run writes them
		c := pipeline.Candidate{Generated: pipeline.Generated{Item: it, Reasoning: pipeline.Reasoning(it)}, Correct: i%2 == 0}
		raw, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(raw))
	}
	cands := filepath.Join(t.TempDir(), "candidates.jsonl")
	if err := os.WriteFile(cands, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if err := run(ctx, []string{"diag", "reward", "--candidates", cands, "--bundles", rm.Dir}, &stdout, &stderr); err != nil {
		t.Fatalf("reward: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "n=4 AUC coherent>incoherent") {
		t.Errorf("reward output: %s", stdout.String())
	}

	stdout.Reset()
	if err := run(ctx, []string{"diag", "generator", "--candidates", cands, "--truth", testRealItems, "--bundles", b.Dir,
		"--per-image", "1", "--max-new-tokens", "8"}, &stdout, &stderr); err != nil {
		t.Fatalf("generator: %v\n%s", err, stderr.String())
	}
	if got := strings.Count(stdout.String(), ": 4 samples, parsed "); got != 2 {
		t.Errorf("generator output (want a line each for the sampled and greedy letter): %s", stdout.String())
	}
}

// TestDiagOracle builds a small benchmark, runs the oracle on it and
// checks it trains and evaluates every set, leaving the held-out modality
// out of the test set.
func TestDiagOracle(t *testing.T) {
	ctx := context.Background()
	shared := filepath.Join("..", "..", "..", "shared", "data")
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := builder.Build(ctx, builder.Config{Collections: []string{filepath.Join(shared, "pneumoniamnist"),
		filepath.Join(shared, "busi"), filepath.Join(shared, "bccd")}, Reference: filepath.Join(shared, "omnimedvqa-text",
		"omnimedvqa_text_sample.json"), OutDir: dir, MaxPerCollection: 12, Holdout: []string{"X-Ray"}, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	test, err := data.Load(filepath.Join(dir, "test.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, it := range test {
		if it.ModalityType != "X-Ray" {
			kept++
		}
	}
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"diag", "oracle", "--data", dir, "--tokenizer", filepath.Join("..", "..", "models", "testdata", "vqa_tokenizer.json"),
		"--epochs", "1", "--items", "8", "--batch", "8", "--hidden", "32", "--intermediate", "64", "--layers", "1", "--threads", "1"},
		&stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"trained on 8 items", "train (first 300): ", "validation: ", "test: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "\ntest: ") || !strings.HasSuffix(strings.SplitN(strings.SplitN(out, "\ntest: ", 2)[1], "\n", 2)[0],
		fmt.Sprintf("(n=%d)", kept)) || kept == len(test) {
		t.Errorf("test set: want n=%d of %d items (X-Ray left out):\n%s", kept, len(test), out)
	}
}
