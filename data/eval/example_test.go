package eval_test

import (
	"context"
	"fmt"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/data/eval"
)

func Example() {
	items := []data.Item{
		{QuestionID: "q1", Question: "Which modality?", OptionA: "CT", OptionB: "X-ray", GTAnswer: "X-ray", ModalityType: "X-Ray"},
		{QuestionID: "q2", Question: "Which organ?", OptionA: "chest", OptionB: "knee", GTAnswer: "chest", ModalityType: "X-Ray"},
	}
	model := eval.NewScripted(map[string]eval.Answer{
		"q1": {Text: "<think>bright bones</think><answer>B</answer>"},
		"q2": {Text: "I am not sure."},
	})
	res, err := eval.Evaluate(context.Background(), model, items, eval.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	o := res.Summary.Overall
	fmt.Printf("%d/%d correct, %d unparsed, 95%% CI [%.2f, %.2f]\n", o.Correct, o.N, o.Unparsed, o.Low, o.High)
	// Output: 1/2 correct, 1 unparsed, 95% CI [0.09, 0.91]
}
