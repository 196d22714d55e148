package train_test

import (
	"fmt"

	"github.com/medgr2/medgr2/train"
)

// Rewards of two groups of four completions become group-normalised
// advantages; the second group's rewards are all equal, so it carries no
// signal (frac_reward_zero_std = 0.5).
func ExampleAdvantages() {
	adv, zeroStd, _, err := train.Advantages([]float64{1, 0, 0, 0, 0.8, 0.8, 0.8, 0.8}, 4, 1e-4)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%.2f zero-std %.1f\n", adv, zeroStd)
	// Output: [1.50 -0.50 -0.50 -0.50 0.00 0.00 0.00 0.00] zero-std 0.5
}

// The reward model's score is mapped from the paper's −6…10 scale to [0, 1].
func ExampleNormalizeRewardScore() {
	fmt.Println(train.NormalizeRewardScore(10), train.NormalizeRewardScore(2), train.NormalizeRewardScore(-6))
	// Output: 1 0.5 0
}
