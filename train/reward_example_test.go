package train_test

import (
	"fmt"
	"slices"

	"github.com/medgr2/medgr2/train"
)

// ExampleLoader_groups batches reward rows item by item: rows sharing a
// Group (RewardRows sets the question id) always land in one batch, so the
// pairwise ranking term (LossConfig.RankWeight) compares an item's graded
// samples with each other.
func ExampleLoader_groups() {
	var rows []train.Row
	for item := range 3 {
		for _, level := range []float32{train.LevelOriginal, train.LevelPerturbed, train.LevelIncoherent, train.LevelIrrelevant} {
			rows = append(rows, train.Row{IDs: make([]int, 20), Target: level, Group: fmt.Sprintf("q%d", item)})
		}
	}
	l, err := train.NewLoader(rows, train.Buckets{Batch: 8, Lengths: []int{32}}, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	for range l.BatchesPerEpoch() {
		batch, bucket := l.Next()
		var groups []string
		for _, r := range batch {
			if !slices.Contains(groups, r.Group) {
				groups = append(groups, r.Group)
			}
		}
		fmt.Printf("%d rows of %v in a %d×%d bucket\n", len(batch), groups, bucket.Batch, bucket.Length)
	}
	// A reward engine with the ranking term:
	// train.NewEngine(env, train.EngineConfig{Objective: train.Reward, Arch: arch,
	//	Loss: train.LossConfig{RankWeight: train.DefaultRewardRankWeight}}, state)

	// Output:
	// 4 rows of [q0] in a 8×32 bucket
	// 8 rows of [q1 q2] in a 8×32 bucket
}
