package eval

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/builder"
)

func fixture() []data.Item {
	mk := func(id, mod, typ string, opts []string, gt string) data.Item {
		it := data.Item{QuestionID: id, Dataset: "F", ModalityType: mod, QuestionType: typ, Question: "Q?", GTAnswer: gt}
		_ = it.SetOptions(opts)
		return it
	}
	four := []string{"cat", "dog", "bird", "fish"}
	return []data.Item{
		mk("1", "M1", "T1", four, "dog"),                 // answered B: correct
		mk("2", "M1", "T1", four, "fish"),                // answered "fish" text: correct
		mk("3", "M1", "T2", four, "cat"),                 // answered B: wrong
		mk("4", "M2", "T2", four, "bird"),                // unparseable: wrong, unparsed
		mk("5", "M2", "T1", []string{"yes", "no"}, "no"), // answered C (beyond 2 options): unparsed
		mk("6", "M2", "T2", four, "cat"),                 // probs only, argmax A: correct
		mk("7", "M2", "T2", four, "dog"),                 // no answer at all: missing, unparsed
	}
}

func fixtureAnswers() *Scripted {
	return NewScripted(map[string]Answer{
		"1": {Text: "<think>x</think><answer>B</answer>"},
		"2": {Text: "It is a fish."},
		"3": {Text: "B"},
		"4": {Text: "no idea"},
		"5": {Text: "C"},
		"6": {OptionProbs: []float64{0.7, 0.1, 0.1, 0.1}},
	})
}

func TestEvaluateKnownAnswers(t *testing.T) {
	for _, bs := range []int{1, 3, 100} {
		res, err := Evaluate(context.Background(), fixtureAnswers(), fixture(), Options{BatchSize: bs})
		if err != nil {
			t.Fatal(err)
		}
		s := res.Summary
		if s.Overall.N != 7 || s.Overall.Correct != 3 || s.Overall.Unparsed != 3 || s.Missing != 1 {
			t.Fatalf("batch %d: overall %+v missing %d", bs, s.Overall, s.Missing)
		}
		if math.Abs(s.Overall.Accuracy-3.0/7) > 1e-12 {
			t.Fatalf("accuracy %v", s.Overall.Accuracy)
		}
		want := map[string][3]int{"M1": {3, 2, 0}, "M2": {4, 1, 3}}
		for _, g := range s.ByModality {
			if w := want[g.Group]; g.N != w[0] || g.Correct != w[1] || g.Unparsed != w[2] {
				t.Fatalf("modality %s: %+v, want n/correct/unparsed %v", g.Group, g, w)
			}
		}
		wantT := map[string][2]int{"T1": {3, 2}, "T2": {4, 1}}
		for _, g := range s.ByQuestionType {
			if w := wantT[g.Group]; g.N != w[0] || g.Correct != w[1] {
				t.Fatalf("type %s: %+v, want %v", g.Group, g, w)
			}
		}
		if p := res.Predictions[4]; p.Parsed || p.Predicted != -1 {
			t.Fatalf("letter beyond options parsed: %+v", p)
		}
	}
}

// TestScoreTextThenProbs checks the server's rule: the option the text
// names, else the most probable option; a text that names none is counted
// unparsed either way.
func TestScoreTextThenProbs(t *testing.T) {
	it := data.Item{QuestionID: "q", Question: "Q?", GTAnswer: "dog"}
	if err := it.SetOptions([]string{"cat", "dog", "bird"}); err != nil {
		t.Fatal(err)
	}
	probs := []float64{0.2, 0.5, 0.3}
	cases := []struct {
		name            string
		a               Answer
		predicted       int
		parsed, correct bool
	}{
		{"text names an option", Answer{Text: "<answer>C</answer>", OptionProbs: probs}, 2, true, false},
		{"text names none: probabilities", Answer{Text: "<think>hmm</think>", OptionProbs: probs}, 1, false, true},
		{"text names none, no probabilities", Answer{Text: "<think>hmm</think>"}, -1, false, false},
		{"probabilities only", Answer{OptionProbs: probs}, 1, true, true},
		{"probabilities of another length", Answer{OptionProbs: probs[:2]}, -1, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := score(it, c.a)
			if err != nil {
				t.Fatal(err)
			}
			if p.Predicted != c.predicted || p.Parsed != c.parsed || p.Correct != c.correct {
				t.Fatalf("predicted %d parsed %v correct %v, want %d %v %v", p.Predicted, p.Parsed, p.Correct, c.predicted, c.parsed, c.correct)
			}
		})
	}
}

func TestWilson(t *testing.T) {
	cases := []struct {
		k, n   int
		lo, hi float64
	}{
		{8, 10, 0.4902, 0.9433},
		{0, 10, 0, 0.2775},
		{10, 10, 0.7225, 1},
		{50, 100, 0.4038, 0.5962},
		{0, 0, 0, 1},
	}
	for _, c := range cases {
		lo, hi := Wilson(c.k, c.n, Z95)
		if math.Abs(lo-c.lo) > 1e-4 || math.Abs(hi-c.hi) > 1e-4 {
			t.Errorf("Wilson(%d, %d) = %.4f, %.4f; want %.4f, %.4f", c.k, c.n, lo, hi, c.lo, c.hi)
		}
	}
}

func TestEvaluateErrors(t *testing.T) {
	items := fixture()
	short := AnswererFunc(func(ctx context.Context, b []data.Item) ([]Answer, error) { return make([]Answer, len(b)-1), nil })
	if _, err := Evaluate(context.Background(), short, items, Options{}); !errors.Is(err, ErrAnswerCount) {
		t.Fatalf("short answers: %v", err)
	}
	boom := errors.New("model exploded")
	failing := AnswererFunc(func(context.Context, []data.Item) ([]Answer, error) { return nil, boom })
	if _, err := Evaluate(context.Background(), failing, items, Options{}); !errors.Is(err, boom) {
		t.Fatalf("failing answerer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Evaluate(ctx, Random{}, items, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	bad := items[:1]
	bad[0].GTAnswer = "unicorn"
	if _, err := Evaluate(context.Background(), Random{}, bad, Options{}); !errors.Is(err, data.ErrAnswerNotInOptions) {
		t.Fatalf("invalid item: %v", err)
	}
}

func TestLoadAnswers(t *testing.T) {
	cases := []struct {
		name, body string
		ok         bool
	}{
		{"good", `{"question_id":"1","output":"B"}` + "\n\n" + `{"question_id":"6","probs":[0.7,0.1,0.1,0.1]}`, true},
		{"bad JSON", `{"question_id":"1",`, false},
		{"no id", `{"output":"B"}`, false},
		{"no output", `{"question_id":"1"}`, false},
		{"duplicate", `{"question_id":"1","output":"B"}` + "\n" + `{"question_id":"1","output":"C"}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "answers.jsonl")
			if err := os.WriteFile(p, []byte(c.body), 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := LoadAnswers(p)
			if c.ok != (err == nil) || (!c.ok && !errors.Is(err, ErrAnswersFile)) {
				t.Fatalf("LoadAnswers() = %v", err)
			}
			if c.ok && (!s.Has("1") || !s.Has("6")) {
				t.Fatal("answers not loaded")
			}
		})
	}
	if _, err := LoadAnswers(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestScriptedBaselines(t *testing.T) {
	items := fixture()[:4]
	c, err := NewConstant("b")
	if err != nil {
		t.Fatal(err)
	}
	res, _ := Evaluate(context.Background(), c, items, Options{})
	if res.Summary.Overall.Correct != 1 {
		t.Fatalf("constant B: %+v", res.Summary.Overall)
	}
	if _, err := NewConstant("E"); !errors.Is(err, ErrLetter) {
		t.Fatalf("NewConstant(E) = %v", err)
	}
	ref := []data.Item{items[0], items[0], items[1]} // "dog" twice, "fish" once
	res, _ = Evaluate(context.Background(), NewMajority(ref), items, Options{})
	for _, p := range res.Predictions {
		if p.Predicted != 1 { // every item offers "dog" at B
			t.Fatalf("majority picked %d for %s", p.Predicted, p.QuestionID)
		}
	}
	a1, _ := Random{Seed: 3}.Answer(context.Background(), items)
	a2, _ := Random{Seed: 3}.Answer(context.Background(), items[2:3])
	if a1[2].Text != a2[0].Text {
		t.Fatal("random answer depends on the batch")
	}
}

func TestRandomOnBuiltTestSplit(t *testing.T) {
	root := "../../../shared/data"
	dirs, err := data.FindCollections(root)
	if err != nil || len(dirs) == 0 {
		t.Fatalf("collections: %v", err)
	}
	out := t.TempDir()
	_, err = builder.Build(context.Background(), builder.Config{
		Collections: dirs, Reference: filepath.Join(root, "omnimedvqa-text", "omnimedvqa_text_sample.json"),
		OutDir: out, ImageSize: 16, Seed: 11, MaxPerCollection: 200,
	})
	if err != nil {
		t.Fatal(err)
	}
	test, err := data.Load(filepath.Join(out, builder.SplitFile(data.SplitTest)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Evaluate(context.Background(), Random{Seed: 5}, test, Options{BatchSize: 32})
	if err != nil {
		t.Fatal(err)
	}
	exp := ExpectedRandomAccuracy(test)
	n := float64(res.Summary.Overall.N)
	band := 4 * math.Sqrt(exp*(1-exp)/n)
	if acc := res.Summary.Overall.Accuracy; math.Abs(acc-exp) > band || res.Summary.Overall.Unparsed != 0 {
		t.Fatalf("random accuracy %.3f on %d test items, expected %.3f ± %.3f", acc, int(n), exp, band)
	}
}
