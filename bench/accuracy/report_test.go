package accuracy

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/data/eval"
)

func sampleReport() Report {
	preds := []eval.Prediction{
		{Modality: "X-Ray", QuestionType: "Disease Diagnosis", Parsed: true, Correct: true},
		{Modality: "X-Ray", QuestionType: "Modality Recognition", Parsed: true},
		{Modality: "Ultrasound", QuestionType: "Disease Diagnosis"},
	}
	var r Report
	r.Add("model", "test split", eval.Summarize(preds))
	r.Add("random", "test split", eval.Summarize(preds[:2]))
	return r
}

func TestReportOutputs(t *testing.T) {
	r := sampleReport()
	var tb bytes.Buffer
	if err := r.WriteTable(&tb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"model", "random", "33.3%", "Ultrasound", "Modality Recognition", "[6.1, 79.2]"} {
		if !strings.Contains(tb.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, tb.String())
		}
	}
	var jb bytes.Buffer
	if err := r.WriteJSON(&jb); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(jb.Bytes(), &back); err != nil || len(back.Rows) != 2 || back.Rows[0].Summary.Overall.Correct != 1 {
		t.Fatalf("JSON round trip: %v %+v", err, back)
	}
	dir := t.TempDir()
	if err := r.Save(dir); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, FilePNG))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if lines := len(r.lines()); img.Bounds().Dy() != topMargin+lines*lineHeight+20 || img.Bounds().Dx() != chartWidth {
		t.Fatalf("chart is %v for %d lines", img.Bounds(), lines)
	}
	// The first bar (model overall, 33.3%) is drawn in the first colour.
	y := topMargin + lineHeight/2 - 4
	if got := img.At(barLeft+5, y); got != colBars[0] {
		t.Fatalf("pixel at first bar = %v, want %v", got, colBars[0])
	}
}

func TestEmptyReport(t *testing.T) {
	if err := (Report{}).WritePNG(&bytes.Buffer{}); !errors.Is(err, ErrEmpty) {
		t.Fatalf("WritePNG(empty) = %v", err)
	}
	if err := sampleReport().Save(filepath.Join(t.TempDir(), "f", "\x00bad")); err == nil {
		t.Fatal("Save to a bad path succeeded")
	}
}
