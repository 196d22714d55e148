package train

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/runtime"
)

// labelWeights returns the label_weights input of a batch.
func labelWeights(t *testing.T, rows []Row, b Bucket) []float32 {
	t.Helper()
	batch, err := MakeBatch(SFT, Tokens{Pad: 0, ImagePad: 5, Hidden: 16, Merge: 2}, rows, b, false)
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Close()
	for _, nt := range batch.Tensors {
		if nt.Name == InLabelWeights {
			d, err := runtime.Data[float32](nt.Tensor)
			if err != nil {
				t.Fatal(err)
			}
			return append([]float32(nil), d...)
		}
	}
	t.Fatalf("batch has no %s", InLabelWeights)
	return nil
}

// TestRowWeights checks per-token loss weights: the batch's label weights
// are the rows' weights over their total, a weight of 0 drops a token
// exactly as a shorter answer span does, and bad weights are errors.
func TestRowWeights(t *testing.T) {
	openEnv(t) // tensors need ONNX Runtime
	b := Bucket{Batch: 2, Length: 12}
	base := syntheticRows(2, 10, 64, 1)
	for i := range base {
		base[i].AnswerStart, base[i].AnswerEnd = 4, 8 // four answer tokens
	}

	weighted := append([]Row(nil), base...)
	weighted[0].Weights = []float32{1, 1, 1, 9}
	got := labelWeights(t, weighted, b)
	// Position s predicts token s+1: row 0's answer tokens 4…7 sit at 3…6.
	want := map[int]float32{3: 1, 4: 1, 5: 1, 6: 9, 12 + 3: 1, 12 + 4: 1, 12 + 5: 1, 12 + 6: 1}
	for i, w := range got {
		if e := want[i] / 16; math.Abs(float64(w-e)) > 1e-7 {
			t.Errorf("label weight %d = %v, want %v", i, w, e)
		}
	}

	zeroed := append([]Row(nil), base...)
	zeroed[0].Weights = []float32{0, 0, 1, 1}
	shorter := append([]Row(nil), base...)
	shorter[0].AnswerStart = 6
	a, c := labelWeights(t, zeroed, b), labelWeights(t, shorter, b)
	for i := range a {
		if a[i] != c[i] {
			t.Fatalf("zero weights differ from the shorter span at %d: %v vs %v", i, a[i], c[i])
		}
	}

	for _, tc := range []struct {
		name    string
		weights []float32
		text    string
	}{
		{"wrong length", []float32{1, 1}, "2 loss weights for 4 answer tokens"},
		{"negative", []float32{1, -1, 1, 1}, "not a finite value"},
		{"nan", []float32{1, float32(math.NaN()), 1, 1}, "not a finite value"},
		{"infinite", []float32{1, float32(math.Inf(1)), 1, 1}, "not a finite value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := append([]Row(nil), base...)
			rows[0].Weights = tc.weights
			_, err := MakeBatch(SFT, Tokens{Pad: 0, ImagePad: 5, Hidden: 16, Merge: 2}, rows, b, false)
			if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want ErrData mentioning %q", err, tc.text)
			}
		})
	}
}
