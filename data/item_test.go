package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

func sampleItem() Item {
	return Item{
		QuestionID: "q1", Dataset: "D", QuestionType: "Disease Diagnosis", ModalityType: "X-Ray",
		Question: "What is shown?", OptionA: "alpha", OptionB: "beta", OptionC: "gamma",
		GTAnswer: "beta", ImagePath: "images/a.png", Split: "test",
		Extra: map[string]json.RawMessage{"source_label": json.RawMessage(`{"k":1}`), "note": json.RawMessage(`"x"`)},
	}
}

func TestRoundTripKeepsEveryField(t *testing.T) {
	for _, name := range []string{"items.json", "items.jsonl"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			in := []Item{sampleItem(), {QuestionID: "q2", Question: "Two?", OptionA: "yes", OptionB: "no", GTAnswer: "no"}}
			if err := Save(path, in); err != nil {
				t.Fatal(err)
			}
			out, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			for i := range out {
				out[i].Root = ""
			}
			if !reflect.DeepEqual(in, out) {
				t.Fatalf("round trip changed items:\n in %+v\nout %+v", in, out)
			}
		})
	}
}

func TestMarshalIsDeterministic(t *testing.T) {
	a, err := json.Marshal(sampleItem())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		b, _ := json.Marshal(sampleItem())
		if !bytes.Equal(a, b) {
			t.Fatalf("marshal not deterministic:\n%s\n%s", a, b)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := sampleItem()
	cases := []struct {
		name string
		edit func(*Item)
		want error
	}{
		{"valid", func(*Item) {}, nil},
		{"two options", func(it *Item) { it.OptionC = "" }, nil},
		{"case-insensitive answer", func(it *Item) { it.GTAnswer = " Beta " }, nil},
		{"zero options", func(it *Item) { it.OptionA, it.OptionB, it.OptionC = "", "", "" }, ErrNoOptions},
		{"one option", func(it *Item) { it.OptionB, it.OptionC, it.GTAnswer = "", "", "alpha" }, ErrTooFewOptions},
		{"gap", func(it *Item) { it.OptionC, it.OptionD = "", "delta" }, ErrOptionGap},
		{"answer not in options", func(it *Item) { it.GTAnswer = "omega" }, ErrAnswerNotInOptions},
		{"empty answer", func(it *Item) { it.GTAnswer = "" }, ErrMissingField},
		{"no id", func(it *Item) { it.QuestionID = "" }, ErrMissingField},
		{"no question", func(it *Item) { it.Question = " " }, ErrMissingField},
		{"duplicate option", func(it *Item) { it.OptionC = "ALPHA" }, ErrDuplicateOption},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			it := ok
			c.edit(&it)
			err := it.Validate()
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("Validate() = %v, want %v", err, c.want)
			}
		})
	}
}

func TestAnswerIndexAndOptions(t *testing.T) {
	it := sampleItem()
	if got := it.Options(); !reflect.DeepEqual(got, []string{"alpha", "beta", "gamma"}) {
		t.Fatalf("Options() = %v", got)
	}
	i, err := it.AnswerIndex()
	if err != nil || i != 1 {
		t.Fatalf("AnswerIndex() = %d, %v", i, err)
	}
	l, _ := it.AnswerLetter()
	if l != "B" {
		t.Fatalf("AnswerLetter() = %q", l)
	}
	if err := it.SetOptions([]string{"a", "b", "c", "d", "e"}); !errors.Is(err, ErrTooManyOptions) {
		t.Fatalf("SetOptions(5) = %v", err)
	}
	if err := it.SetOptions([]string{"x", "y"}); err != nil || it.OptionC != "" || len(it.Options()) != 2 {
		t.Fatalf("SetOptions(2) = %v, %+v", err, it)
	}
}

func TestImageFile(t *testing.T) {
	it := Item{ImagePath: "images/a.png", Root: "/data/set"}
	if got := it.ImageFile(); got != filepath.FromSlash("/data/set/images/a.png") {
		t.Fatalf("ImageFile() = %q", got)
	}
	it.ImagePath = "/abs/b.png"
	if got := it.ImageFile(); got != "/abs/b.png" {
		t.Fatalf("ImageFile() = %q", got)
	}
}

func TestDedupeOptions(t *testing.T) {
	cases := []struct {
		name    string
		opts    []string
		answer  string
		dropped int
		want    []string
		wantAns string
	}{
		{"no repeat", []string{"a", "b", "c"}, "b", 0, []string{"a", "b", "c"}, "b"},
		{"answer repeated later", []string{"benign", "normal", "Benign ", "malignant"}, "Benign ", 1,
			[]string{"benign", "normal", "malignant"}, "benign"},
		{"distractor repeated", []string{"0", "1", "1", "1"}, "0", 2, []string{"0", "1"}, "0"},
		{"all the same", []string{"x", "x"}, "x", 1, []string{"x"}, "x"},
		{"answer not an option", []string{"a", "a", "b"}, "z", 1, []string{"a", "b"}, "z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			it := Item{QuestionID: "q", Question: "?", GTAnswer: c.answer}
			if err := it.SetOptions(c.opts); err != nil {
				t.Fatal(err)
			}
			if n := it.DedupeOptions(); n != c.dropped {
				t.Errorf("dropped %d, want %d", n, c.dropped)
			}
			if got := it.Options(); !slices.Equal(got, c.want) || it.GTAnswer != c.wantAns {
				t.Errorf("options %q answer %q, want %q %q", got, it.GTAnswer, c.want, c.wantAns)
			}
		})
	}
	gap := Item{QuestionID: "q", Question: "?", OptionA: "a", OptionB: "a", OptionD: "d", GTAnswer: "a"}
	if n := gap.DedupeOptions(); n != 0 || gap.OptionD != "d" || !errors.Is(gap.Validate(), ErrOptionGap) {
		t.Errorf("an item with a gap was changed: dropped %d, %+v", n, gap)
	}
}
