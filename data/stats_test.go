package data

import (
	"bytes"
	"strings"
	"testing"
)

func TestComputeStats(t *testing.T) {
	items := []Item{
		{QuestionID: "1", ModalityType: "M1", QuestionType: "T1", Split: "test", OptionA: "a", OptionB: "b", GTAnswer: "a", ImagePath: "x"},
		{QuestionID: "2", ModalityType: "M1", QuestionType: "T2", Split: "train", OptionA: "a", OptionB: "b", GTAnswer: "b", ImagePath: "x"},
		{QuestionID: "3", ModalityType: "M2", OptionA: "a", OptionB: "b", OptionC: "c", GTAnswer: "zz", ImagePath: "y"},
	}
	s := ComputeStats(items)
	if s.Items != 3 || s.Images != 2 || s.ByModality["M1"] != 2 || s.ByQuestionType["(none)"] != 1 ||
		s.AnswerLetters["A"] != 1 || s.AnswerLetters["B"] != 1 || s.Invalid != 1 || s.ByOptionCount[3] != 1 {
		t.Fatalf("stats = %+v", s)
	}
	var buf bytes.Buffer
	if err := s.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"modality", "question type", "split", "answer letter", "invalid answers"} {
		if !strings.Contains(buf.String(), want) {
			t.Fatalf("card lacks %q:\n%s", want, buf.String())
		}
	}
}
