package backend_test

import (
	"context"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/server/backend"
	"github.com/medgr2/medgr2/server/model"
)

// defaultGenerator is the generator bundle the project ships.
const defaultGenerator = "../../models/default/generator"

// TestDefaultGeneratorItems asks the shipped generator for items about a
// real X-ray and checks what a client receives: at least one item, each
// with two or more distinct options and an answer among them.
func TestDefaultGeneratorItems(t *testing.T) {
	m := open(t, backend.Options{Generator: defaultGenerator, GenerateMaxTokens: 96})
	img, _, err := preprocessing.DecodeFile(xrayPNG, preprocessing.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Generator.GenerateBatch(context.Background(), []model.GenerateInput{{Image: model.Image{Decoded: img}, ImageHash: "x-ray",
		NumItems: 8, Metadata: map[string]string{"modality": "X-Ray", "dataset": "PneumoniaMNIST"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || len(out[0]) == 0 {
		t.Fatalf("got %d inputs' items (%v); want items for the one input", len(out), out)
	}
	for k, it := range out[0] {
		seen := map[string]bool{}
		for _, o := range it.Options {
			key := strings.ToLower(strings.TrimSpace(o))
			if seen[key] {
				t.Errorf("item %d repeats option %q: %q", k, o, it.Options)
			}
			seen[key] = true
		}
		if len(it.Options) < 2 || it.Answer < 0 || it.Answer >= len(it.Options) || it.Question == "" {
			t.Errorf("item %d: %+v", k, it)
		}
	}
	t.Logf("%d of 8 completions became items; first: %+v", len(out[0]), out[0][0])
}
