package train

import (
	"context"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
)

// tinyArch is a one-layer model small enough for many test steps.
func tinyArch(vocab int) models.ArchConfig {
	c := models.DefaultConfig(vocab)
	c.HiddenSize, c.IntermediateSize, c.NumLayers, c.NumHeads, c.NumKVHeads = 32, 64, 1, 2, 1
	c.MRopeSection = []int{2, 3, 3}
	c.Vision.Depth, c.Vision.EmbedDim, c.Vision.NumHeads = 1, 32, 2
	return c
}

// openEnv opens ONNX Runtime; a missing library fails the test loudly.
func openEnv(t testing.TB) *runtime.Env {
	t.Helper()
	env, err := runtime.Open(context.Background(), runtime.Options{LibraryPath: os.Getenv("MEDGR2_ORT_LIB")})
	if err != nil {
		t.Fatalf("ONNX Runtime is required (run `make ort`, set MEDGR2_ORT_LIB): %v", err)
	}
	return env
}

// randomState returns a state with random weights training every decoder
// parameter of cfg.
func randomState(t testing.TB, cfg models.ArchConfig, reward bool, seed uint64) *State {
	t.Helper()
	openEnv(t) // tensors need the ONNX Runtime library loaded
	ws := map[string]*graph.Tensor{}
	for _, nt := range models.RandomWeights(models.WeightSpecs(cfg, reward), seed, cfg.InitStd) {
		ws[nt.Name] = nt.Tensor
	}
	s, err := NewState(ws, DecoderParams(cfg, reward))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// syntheticRows returns text-only rows: random prompts whose answer is a
// fixed function of the first prompt token, so it is learnable.
func syntheticRows(n, length, vocab int, seed uint64) []Row {
	rng := rand.New(rand.NewPCG(seed, 1))
	rows := make([]Row, n)
	for i := range rows {
		ids := make([]int, length)
		for j := range ids {
			ids[j] = 10 + rng.IntN(vocab-10)
		}
		ans := length - 3
		ids[ans] = 10 + (ids[0]*7)%(vocab-10)
		rows[i] = Row{IDs: ids, AnswerStart: ans, AnswerEnd: ans + 1}
	}
	return rows
}

func makeTempDir(prefix string) (string, error) { return os.MkdirTemp("", prefix) }
