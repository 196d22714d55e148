package pipeline_test

import (
	"fmt"

	"github.com/medgr2/medgr2/data"
	"github.com/medgr2/medgr2/pipeline"
)

// Example shows the filter at work: four samples pass τ, three of them
// share a question template, and the diversity rule lets that template
// take at most half of the eligible samples.
func Example() {
	mk := func(id, q string, score float64) pipeline.Candidate {
		it := data.Item{QuestionID: id, Question: q, ImagePath: "img.png"}
		_ = it.SetOptions([]string{"normal", "pneumonia"})
		it.GTAnswer = "normal"
		return pipeline.Candidate{Generated: pipeline.Generated{Item: it}, Score: score}
	}
	cands := []pipeline.Candidate{
		mk("a", "Is this chest normal?", 9.1),
		mk("b", "Is this chest normal?", 8.7),
		mk("c", "Which organ is shown?", 6.2),
		mk("d", "Is this chest normal?", 7.0),
		mk("e", "Which organ is shown?", 3.0), // below τ
	}
	tau := 5.0
	res := pipeline.Filter(cands, pipeline.FilterConfig{Threshold: &tau, MaxTemplateShare: 0.5})
	for _, c := range cands {
		fmt.Println(c.Item.QuestionID, c.Accepted)
	}
	fmt.Println("eligible", res.Eligible, "accepted", res.Accepted)
	// Output:
	// a true
	// b true
	// c true
	// d false
	// e false
	// eligible 4 accepted 3
}
