//go:build rmdiag

package ortbackend

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/pipeline"
)

// TestRewardDiag scores a round's candidates (RMDIAG_CANDS, a
// candidates.jsonl) with each reward bundle in RMDIAG_BUNDLES (comma
// separated) and prints the AUC of coherent over incoherent samples and
// of correct over wrong ones. A diagnostic, not part of CI:
//
//	RMDIAG_CANDS=out/pipeline/stages/s1/round-1/candidates.jsonl \
//	RMDIAG_BUNDLES=out/pipeline/stages/s1/round-0/reward,out/pipeline/stages/s1/round-1/reward \
//	go test -tags rmdiag -run TestRewardDiag -v ./pipeline/ortbackend/
//
// Relative paths (the variables' and the candidates' image paths) are
// relative to the repository root.
func TestRewardDiag(t *testing.T) {
	ctx := context.Background()
	if os.Getenv("RMDIAG_CANDS") == "" || os.Getenv("RMDIAG_BUNDLES") == "" {
		t.Skip("set RMDIAG_CANDS and RMDIAG_BUNDLES")
	}
	var cands []pipeline.Candidate
	for _, c := range diagCandidates(t, os.Getenv("RMDIAG_CANDS")) {
		if c.Err == "" {
			cands = append(cands, c)
		}
	}
	ex := make([]pipeline.Example, len(cands))
	for i, c := range cands {
		ex[i] = pipeline.Example{Item: c.Item, Reasoning: c.Reasoning}
	}
	be := diagBackend(t)
	for _, b := range strings.Split(os.Getenv("RMDIAG_BUNDLES"), ",") {
		s, err := be.Score(ctx, fromRoot(b), ex)
		if err != nil {
			t.Fatal(err)
		}
		auc := func(pos func(int) bool) float64 {
			var p, n []float64
			for i := range s {
				if pos(i) {
					p = append(p, s[i])
				} else {
					n = append(n, s[i])
				}
			}
			sort.Float64s(n)
			var w float64
			for _, x := range p {
				for _, y := range n {
					switch {
					case x > y:
						w++
					case x == y:
						w += .5
					}
				}
			}
			return w / float64(len(p)*len(n))
		}
		fmt.Printf("%s: n=%d AUC coherent>incoherent %.3f, correct>wrong %.3f\n", b, len(s),
			auc(func(i int) bool { return pipeline.Coherent(cands[i].Item, cands[i].Reasoning) }),
			auc(func(i int) bool { return cands[i].Correct }))
	}
}
