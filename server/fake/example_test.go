package fake_test

import (
	"context"
	"fmt"

	"github.com/medgr2/medgr2/server/fake"
	"github.com/medgr2/medgr2/server/model"
)

func Example() {
	m := fake.NewVQA(fake.Options{})
	out, err := m.AnswerBatch(context.Background(), []model.VQAInput{
		{ImageHash: "abc", Question: "Which modality?", Options: []string{"CT", "MRI"}},
	})
	fmt.Println(len(out[0].Probs), err, m.Info().Name)
	// Output: 2 <nil> fake-vqa
}
