package generate_test

import (
	"context"
	"fmt"

	"github.com/medgr2/medgr2/runtime/generate"
)

// counter is a toy model over a 4-token vocabulary that always prefers the
// token after the last one.
type counter struct{}

func (counter) Next(_ context.Context, tokens []int) (generate.Logits, error) {
	l := generate.Logits{Rows: len(tokens), Vocab: 4, Data: make([]float32, 4*len(tokens))}
	for i, t := range tokens {
		l.Data[i*4+(t+1)%4] = 10
	}
	return l, nil
}

func Example() {
	first, _ := counter{}.Next(context.Background(), []int{0})
	res, err := generate.Run(context.Background(), counter{}, first, []generate.Options{
		{MaxNewTokens: 8, StopTokens: []int{0}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(res[0].Tokens, res[0].FinishReason)
	fmt.Printf("%.3f\n", generate.OptionProbs(first.Row(0), []int{1, 2}))
	// Output:
	// [1 2 3 0] stop
	// [1.000 0.000]
}
