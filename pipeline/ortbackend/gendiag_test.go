//go:build gendiag

package ortbackend

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/pipeline"
	"github.com/medgr2/medgr2/preprocessing"
)

// TestGeneratorDiag samples each generator bundle in GENDIAG_BUNDLES
// (comma separated, absolute paths) on the images of a round's candidates
// (GENDIAG_CANDS; relative paths are taken from the repository root),
// once with the answer letter sampled at the run's temperature and once
// greedily, and prints the parse rate (repeated options dropped, as the
// loop does), the share of coherent samples and the share of truly
// correct ones against the labels in GENDIAG_TRUTH (a run's
// stages/data/all.jsonl, absolute path). A diagnostic, not part of CI:
//
//	GENDIAG_CANDS=/tmp/run/stages/s1/round-1/candidates.jsonl \
//	GENDIAG_TRUTH=/tmp/run/stages/data/all.jsonl \
//	GENDIAG_BUNDLES=/tmp/run/stages/s1/round-0/generator \
//	go test -tags gendiag -run TestGeneratorDiag -v ./pipeline/ortbackend/
func TestGeneratorDiag(t *testing.T) {
	ctx := context.Background()
	if os.Getenv("GENDIAG_CANDS") == "" || os.Getenv("GENDIAG_BUNDLES") == "" || os.Getenv("GENDIAG_TRUTH") == "" {
		t.Skip("set GENDIAG_CANDS, GENDIAG_TRUTH and GENDIAG_BUNDLES")
	}
	var reqs []pipeline.GenRequest
	seen := map[string]bool{}
	for _, c := range diagCandidates(t, os.Getenv("GENDIAG_CANDS")) {
		if seen[c.Item.ImagePath] {
			continue
		}
		seen[c.Item.ImagePath] = true
		for j := range 4 {
			reqs = append(reqs, pipeline.GenRequest{Image: c.Item.ImagePath, Modality: c.Item.ModalityType,
				Dataset: c.Item.Dataset, QuestionID: fmt.Sprintf("%s-%d", c.Item.QuestionID, j)})
		}
	}
	items, err := data.Load(os.Getenv("GENDIAG_TRUTH"))
	if err != nil {
		t.Fatal(err)
	}
	truth := pipeline.NewTruth(items)
	be := diagBackend(t)
	greedy := 0.0
	for _, b := range strings.Split(os.Getenv("GENDIAG_BUNDLES"), ",") {
		for _, letter := range []*float64{nil, &greedy} {
			out, err := be.Generate(ctx, b, reqs, pipeline.SampleOptions{Temperature: 0.8, AnswerTemperature: letter,
				MaxNewTokens: 96, Seed: 11})
			if err != nil {
				t.Fatal(err)
			}
			var parsed, coherent, correct, cohCorrect int
			for i, g := range out {
				g.Item.ImagePath, g.Item.Root = reqs[i].Image, ""
				if g.Item.QuestionID == "" {
					g.Item.QuestionID = reqs[i].QuestionID
				}
				if g.Err != "" {
					continue
				}
				g.Item.DedupeOptions() // as the loop counts a parsed sample
				if g.Item.Validate() != nil {
					continue
				}
				parsed++
				c := pipeline.Coherent(g.Item, g.Reasoning)
				ok := truth.Correct(g.Item)
				if c {
					coherent++
				}
				if ok {
					correct++
				}
				if c && ok {
					cohCorrect++
				}
			}
			name := "letter at T"
			if letter != nil {
				name = "greedy letter"
			}
			fmt.Printf("%s [%s]: %d samples, parsed %d, coherent %.1f%%, correct %.1f%% (coherent and correct %d)\n",
				b, name, len(out), parsed, 100*float64(coherent)/float64(max(parsed, 1)),
				100*float64(correct)/float64(max(parsed, 1)), cohCorrect)
		}
	}
}

// TestGeneratorLetterDiag measures the letter lookup alone: for items of
// GENDIAG_ITEMS (an item file; at most 200, options shuffled once) it
// feeds each generator bundle of GENDIAG_BUNDLES the sample text up to
// "<answer>", with the item's own reasoning, and prints how often the
// most likely option letter is the one of the option the reasoning names
// (chance: 1 in the number of options). GENDIAG_TEXT=1 drops the images,
// as the pretrain stage does.
//
//	GENDIAG_ITEMS=/tmp/run/stages/data/validation.jsonl \
//	GENDIAG_BUNDLES=/tmp/run/stages/pretrain/generator \
//	go test -tags gendiag -run TestGeneratorLetterDiag -v ./pipeline/ortbackend/
func TestGeneratorLetterDiag(t *testing.T) {
	ctx := context.Background()
	if os.Getenv("GENDIAG_ITEMS") == "" || os.Getenv("GENDIAG_BUNDLES") == "" {
		t.Skip("set GENDIAG_ITEMS and GENDIAG_BUNDLES")
	}
	items, err := data.Load(os.Getenv("GENDIAG_ITEMS"))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) > 200 {
		items = items[:200]
	}
	ex := make([]pipeline.Example, len(items))
	for i, it := range items {
		if os.Getenv("GENDIAG_TEXT") != "" { // text only, as the pretrain stage trains
			it.ImagePath = ""
		}
		ex[i] = pipeline.Example{Item: it, Reasoning: pipeline.Reasoning(it)}
	}
	shuffled, err := shuffledOptions(ex, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	ex = shuffled[len(ex):]
	be := diagBackend(t)
	for _, b := range strings.Split(os.Getenv("GENDIAG_BUNDLES"), ",") {
		v, err := be.open(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := buildRows(ctx, v, pipeline.RoleGenerator, ex, nil)
		if err != nil {
			t.Fatal(err)
		}
		answer, err := v.AnswerToken()
		if err != nil {
			t.Fatal(err)
		}
		var hit, n int
		for i, r := range rows {
			at := answerLetter(r, answer)
			if at < 0 {
				t.Fatalf("row %d has no %s", i, models.AnswerOpen)
			}
			px, err := pixels(v, ex[i].Item.ImageFile())
			if err != nil {
				t.Fatal(err)
			}
			var imgs []*preprocessing.Pixels
			if px != nil {
				imgs = append(imgs, px)
			}
			logits, err := v.LastLogits(ctx, []models.Prompt{{IDs: r.IDs[:at], Images: imgs}})
			if err != nil {
				t.Fatal(err)
			}
			letters, err := v.LetterTokens(len(ex[i].Item.Options()))
			if err != nil {
				t.Fatal(err)
			}
			row := logits.Row(0)
			best := 0
			for k, id := range letters {
				if row[id] > row[letters[best]] {
					best = k
				}
			}
			n++
			if letters[best] == r.IDs[at] {
				hit++
			}
		}
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("%s: letter of the named option most likely in %d of %d (%.1f%%)\n", b, hit, n, 100*float64(hit)/float64(n))
	}
}
