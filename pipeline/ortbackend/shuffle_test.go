package ortbackend

import (
	"slices"
	"testing"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/pipeline"
)

func shuffleItem(id string, opts []string, gold string) pipeline.Example {
	it := data.Item{QuestionID: id, Question: "Which?", GTAnswer: gold}
	_ = it.SetOptions(opts)
	return pipeline.Example{Item: it, Reasoning: "r"}
}

func TestShuffledOptions(t *testing.T) {
	four := shuffleItem("q4", []string{"w", "x", "y", "z"}, "x")
	two := shuffleItem("q2", []string{"yes", "no"}, "no")
	one := shuffleItem("q1", []string{"only"}, "only")
	cases := []struct {
		name   string
		ex     []pipeline.Example
		copies int
		want   int
	}{
		{"none", []pipeline.Example{four, two}, 0, 2},
		{"negative is none", []pipeline.Example{four}, -3, 1},
		{"three copies", []pipeline.Example{four, two}, 3, 8},
		{"single option", []pipeline.Example{one}, 2, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := shuffledOptions(c.ex, c.copies, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != c.want {
				t.Fatalf("%d examples, want %d", len(out), c.want)
			}
			for i, e := range out {
				src := c.ex[i%len(c.ex)]
				got, err := e.Item.AnswerIndex()
				if err != nil {
					t.Fatalf("example %d: %v", i, err)
				}
				if e.Item.Options()[got] != src.Item.GTAnswer || e.Reasoning != src.Reasoning {
					t.Errorf("example %d: gold %q, want %q", i, e.Item.Options()[got], src.Item.GTAnswer)
				}
				a, b := slices.Sorted(slices.Values(e.Item.Options())), slices.Sorted(slices.Values(src.Item.Options()))
				if !slices.Equal(a, b) {
					t.Errorf("example %d: options %v, want a permutation of %v", i, e.Item.Options(), src.Item.Options())
				}
				if i >= len(c.ex) && len(src.Item.Options()) > 1 && slices.Equal(e.Item.Options(), src.Item.Options()) {
					t.Errorf("example %d kept the original order %v", i, e.Item.Options())
				}
			}
		})
	}
}

func TestShuffledOptionsSpreadsLetters(t *testing.T) {
	ex := []pipeline.Example{shuffleItem("q", []string{"a", "b", "c", "d"}, "a")}
	out, err := shuffledOptions(ex, 400, 7)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range out[1:] {
		l, _ := e.Item.AnswerLetter()
		count[l]++
	}
	// the original order is excluded, so A holds the answer 6 times in 23
	// (≈104 of 400); every letter should be well represented
	for _, l := range []string{"A", "B", "C", "D"} {
		if count[l] < 60 {
			t.Errorf("letter %s is gold %d times in 400 shuffles: %v", l, count[l], count)
		}
	}
	again, _ := shuffledOptions(ex, 400, 7)
	for i := range out {
		if !slices.Equal(out[i].Item.Options(), again[i].Item.Options()) {
			t.Fatalf("shuffle %d differs between runs with the same seed", i)
		}
	}
}
