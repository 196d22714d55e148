package ortbackend

import (
	"context"
	"errors"
	"testing"

	"github.com/medgr2/medgr2/pipeline"
)

// TestWeighAnswer checks that the answer weight lands on the generator
// row's answer letter, the token after "<answer>", and on nothing else.
func TestWeighAnswer(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	ex := realExamples(t, 4)
	bundle := setup(t, b, pipeline.RoleGenerator, ex)
	v, err := b.open(ctx, bundle)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	rows, err := buildRows(ctx, v, pipeline.RoleGenerator, ex, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := weighAnswer(v, rows, 12); err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		letter, _ := ex[i].Item.AnswerLetter()
		var heavy []string
		for k, w := range r.Weights {
			switch w {
			case 1:
			case 12:
				s, err := v.Tokenizer().Decode(r.IDs[r.AnswerStart+k:r.AnswerStart+k+1], false)
				if err != nil {
					t.Fatal(err)
				}
				heavy = append(heavy, s)
			default:
				t.Fatalf("row %d: weight %v", i, w)
			}
		}
		if len(r.Weights) != r.AnswerEnd-r.AnswerStart || len(heavy) != 1 || heavy[0] != letter {
			t.Errorf("row %d: %d weights for %d answer tokens, weighted tokens %q; want [%q]",
				i, len(r.Weights), r.AnswerEnd-r.AnswerStart, heavy, letter)
		}
	}

	// A row whose answer span holds no "<answer>" (a VQA fast-path row
	// starts after it) is refused.
	vqa, err := buildRows(ctx, v, pipeline.RoleVQA, ex[:1], nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := weighAnswer(v, vqa, 12); !errors.Is(err, pipeline.ErrData) {
		t.Errorf("row without <answer>: err %v, want ErrData", err)
	}
}
