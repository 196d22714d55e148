package data_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/medgr2/medgr2/data"
)

func Example() {
	dir, _ := os.MkdirTemp("", "data-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "bench.jsonl")
	item := data.Item{
		QuestionID: "q1", Dataset: "Demo", QuestionType: "Modality Recognition", ModalityType: "X-Ray",
		Question: "What imaging modality was used to capture this image?",
		OptionA:  "CT", OptionB: "X-ray", OptionC: "MRI", GTAnswer: "X-ray", ImagePath: "images/q1.png",
	}
	if err := data.Save(path, []data.Item{item}); err != nil {
		fmt.Println(err)
		return
	}
	items, err := data.Load(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	want, _ := items[0].AnswerIndex()
	got, ok := data.ExtractAnswer("<think>bones are bright</think><answer>B</answer>", items[0].Options())
	fmt.Println(items[0].Options(), want, got, ok)
	// Output: [CT X-ray MRI] 1 1 true
}
