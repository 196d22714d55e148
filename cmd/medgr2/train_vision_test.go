package main

import (
	"bytes"
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
)

// TestTrainSFTVision trains the vision encoder from the CLI on a
// benchmark of one image size (its vision weights move), and names the
// problem when a data file mixes image sizes.
func TestTrainSFTVision(t *testing.T) {
	ctx := context.Background()
	b := smallGRPOBundle(t)
	bench := t.TempDir()
	root := filepath.Join("..", "..", "..", "shared", "data")
	var so, se bytes.Buffer
	if err := run(ctx, []string{"data", "build", "--root", root, "--out", bench, "--max-per-collection", "6", "--image-size", "56",
		filepath.Join(root, "mednist-ct")}, &so, &se); err != nil {
		t.Fatalf("data build: %v\n%s", err, se.String())
	}
	out := t.TempDir()
	args := []string{"train", "sft", "--bundle", b.Dir, "--data", filepath.Join(bench, "train.jsonl"), "--out", out,
		"--steps", "2", "--batch", "2", "--lengths", "256", "--lr", "0.01", "--train_vision"}
	if err := run(ctx, args, &so, &se); err != nil {
		t.Fatalf("train sft --train_vision: %v\n%s", err, se.String())
	}
	weights := func(dir string) map[string]*graph.Tensor {
		bd, err := models.Load(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		w, _, err := graph.ReadWeights(bd.WeightsPath())
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	before, after := weights(b.Dir), weights(filepath.Join(out, "bundle"))
	moved := 0
	for name, w := range after {
		if strings.HasPrefix(name, "visual.") && !reflect.DeepEqual(w.F32, before[name].F32) {
			moved++
		}
	}
	if moved == 0 {
		t.Error("no vision weight moved with --train_vision")
	}
	mixed := []string{"train", "sft", "--bundle", b.Dir, "--data", testRealItems, "--out", t.TempDir(),
		"--steps", "1", "--batch", "8", "--lengths", "256", "--train_vision"}
	if err := run(ctx, mixed, &so, &se); err == nil || !strings.Contains(err.Error(), "one image size") {
		t.Errorf("mixed image sizes: %v, want an error naming the size rule", err)
	}
}
