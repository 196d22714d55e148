package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/bench/accuracy"
	"github.com/medgr2/medgr2/data"
)

// writeItems writes n items with the given split (gold answer: option
// answer) as JSONL and returns the path.
func writeItems(t *testing.T, dir, name string, n int, split, answer string) string {
	t.Helper()
	var b bytes.Buffer
	for i := range n {
		it := map[string]string{"question_id": fmt.Sprintf("%s-%s-%d", name, split, i), "dataset": "d", "question_type": "q",
			"modality_type": "X-Ray", "question": "Which?", "option_A": "a", "option_B": "b", "gt_answer": answer,
			"image_path": "x.png", "split": split}
		raw, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(raw, '\n'))
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readReport reads accuracy.json from an eval --out folder.
func readReport(t *testing.T, dir string) accuracy.Report {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, accuracy.FileJSON))
	if err != nil {
		t.Fatal(err)
	}
	var rep accuracy.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// majorityAcc returns the majority row's accuracy on the first benchmark.
func majorityAcc(t *testing.T, rep accuracy.Report) float64 {
	t.Helper()
	for _, r := range rep.Rows {
		if r.Name == "majority" {
			return r.Summary.Overall.Accuracy
		}
	}
	t.Fatalf("no majority row in %+v", rep)
	return 0
}

// TestEvalMajorityNamesItsTrainingFile checks that the majority baseline
// counts only the file it is given, ignores a train.jsonl lying beside
// --data, and that the printed and written reports name what it counted.
func TestEvalMajorityNamesItsTrainingFile(t *testing.T) {
	dir := t.TempDir()
	test := writeItems(t, dir, "test.jsonl", 4, "test", "a")
	writeItems(t, dir, "train.jsonl", 6, "train", "b") // beside --data, mostly "b": must not be read unasked
	other := writeItems(t, t.TempDir(), "mine.jsonl", 3, "train", "b")
	tests := []struct {
		name     string
		args     []string
		note     string
		majority float64
	}{
		{"no --train", nil, "majority baseline counts answers in the 4 evaluated items (no --train)", 1},
		{"--train", []string{"--train", other}, "majority baseline counts answers in " + other + " (3 items)", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			var so bytes.Buffer
			args := append([]string{"eval", "--data", test, "--answerer", "constant:A", "--out", out}, tc.args...)
			if err := run(context.Background(), args, &so, &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
			rep := readReport(t, out)
			if !strings.Contains(so.String(), "note: "+tc.note) || !strings.Contains(strings.Join(rep.Notes, "\n"), tc.note) {
				t.Fatalf("want note %q; printed:\n%s\nwritten: %q", tc.note, so.String(), rep.Notes)
			}
			if got := majorityAcc(t, rep); got != tc.majority {
				t.Fatalf("majority accuracy %v, want %v", got, tc.majority)
			}
		})
	}
	err := run(context.Background(), []string{"eval", "--data", test, "--answerer", "random", "--out", t.TempDir(),
		"--train", filepath.Join(dir, "missing.jsonl")}, &bytes.Buffer{}, &bytes.Buffer{})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "--train") {
		t.Fatalf("missing --train: %v", err)
	}
}

// TestEvalReal checks that the real row is there only when --real is
// given, and that a missing --real file is an error that names the flag.
func TestEvalReal(t *testing.T) {
	dir := t.TempDir()
	test := writeItems(t, dir, "test.jsonl", 2, "test", "a")
	real := writeItems(t, dir, "real.jsonl", 3, "", "b")
	tests := []struct {
		name     string
		args     []string
		wantRows int // random, majority and the subject, per benchmark
		wantErr  error
	}{
		{"default", nil, 3, nil},
		{"given", []string{"--real", real}, 6, nil},
		{"missing", []string{"--real", filepath.Join(dir, "nope.json")}, 0, fs.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			args := append([]string{"eval", "--data", test, "--answerer", "random", "--out", out}, tc.args...)
			err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), "--real") {
					t.Fatalf("err %v, want %v naming --real", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rows := len(readReport(t, out).Rows); rows != tc.wantRows {
				t.Fatalf("%d rows, want %d", rows, tc.wantRows)
			}
		})
	}
}

func TestSelectSplit(t *testing.T) {
	split := func(s ...string) []data.Item {
		var out []data.Item
		for _, x := range s {
			out = append(out, data.Item{Split: x})
		}
		return out
	}
	tests := []struct {
		name     string
		items    []data.Item
		split    string
		explicit bool
		n        int
		applied  string
		note     string // substring of the note; "" when an error is wanted
	}{
		{"default test", split("train", "test", "test"), "test", false, 2, "test", `2 of 3 items, split "test"`},
		{"all", split("train", "test"), "", true, 2, "", "all 2 items"},
		{"no split field, default", split("", ""), "test", false, 2, "", "no split field"},
		{"no split field, explicit", split("", ""), "test", true, 0, "", ""},
		{"no such split", split("train"), "test", false, 0, "", ""},
		{"no items", nil, "", false, 0, "", ""},
	}
	for _, tc := range tests {
		got, applied, note, err := selectSplit(tc.items, tc.split, tc.explicit)
		if tc.note == "" {
			if err == nil {
				t.Errorf("%s: no error", tc.name)
			}
			continue
		}
		if err != nil || len(got) != tc.n || applied != tc.applied || !strings.Contains(note, tc.note) {
			t.Errorf("%s: %d items, split %q applied, note %q, err %v", tc.name, len(got), applied, note, err)
		}
	}
}

// TestEvalSplitIsVisible checks that the split filter is named on stderr
// and in the report, and that an explicit --split on items without split
// fields is a usage error.
func TestEvalSplitIsVisible(t *testing.T) {
	dir := t.TempDir()
	all := filepath.Join(dir, "all.jsonl")
	train, err := os.ReadFile(writeItems(t, dir, "train.jsonl", 3, "train", "a"))
	if err != nil {
		t.Fatal(err)
	}
	test, err := os.ReadFile(writeItems(t, dir, "test.jsonl", 2, "test", "a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(all, append(train, test...), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var se bytes.Buffer
	if err := run(context.Background(), []string{"eval", "--data", all, "--answerer", "random", "--out", out}, &bytes.Buffer{}, &se); err != nil {
		t.Fatal(err)
	}
	const want = `all.jsonl: 2 of 5 items, split "test"`
	if !strings.Contains(se.String(), want) || !strings.Contains(strings.Join(readReport(t, out).Notes, "\n"), want) {
		t.Fatalf("split not named: stderr %q", se.String())
	}
	nosplit := writeItems(t, dir, "plain.jsonl", 2, "", "a")
	err = run(context.Background(), []string{"eval", "--data", nosplit, "--answerer", "random", "--split", "test", "--out", t.TempDir()}, &bytes.Buffer{}, &bytes.Buffer{})
	var u usageError
	if !errors.As(err, &u) {
		t.Fatalf("explicit --split on items without splits: %v", err)
	}
}
