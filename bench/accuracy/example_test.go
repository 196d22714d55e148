package accuracy_test

import (
	"os"

	"github.com/medgr2/medgr2/bench/accuracy"
	"github.com/medgr2/medgr2/data/eval"
)

func Example() {
	preds := []eval.Prediction{
		{Modality: "X-Ray", QuestionType: "Disease Diagnosis", Parsed: true, Correct: true},
		{Modality: "X-Ray", QuestionType: "Disease Diagnosis", Parsed: true},
	}
	var rep accuracy.Report
	rep.Add("model", "demo", eval.Summarize(preds))
	_ = rep.WriteTable(os.Stdout)
	// Output:
	// system  benchmark  accuracy  95% CI       n  unparsed
	// model   demo       50.0%     [9.5, 90.5]  2  0
	//
	// model on demo    group              accuracy  95% CI       n  unparsed
	//   modality       X-Ray              50.0%     [9.5, 90.5]  2  0
	//   question type  Disease Diagnosis  50.0%     [9.5, 90.5]  2  0
}
