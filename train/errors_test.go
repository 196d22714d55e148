package train

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/graph"
	"github.com/medgr2/medgr2/runtime"
)

// TestBadInputs checks each bad-input path stops with an error naming the
// problem.
func TestBadInputs(t *testing.T) {
	ctx := context.Background()
	cfg := tinyArch(64)
	tok := Tokens{Pad: 0, ImagePad: 5, Hidden: cfg.HiddenSize, Merge: 2}
	st := randomState(t, cfg, false, 1)
	eng, err := NewEngine(openEnv(t), EngineConfig{Objective: SFT, Arch: cfg}, st)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	b := Bucket{Batch: 2, Length: 12}
	good := syntheticRows(2, 10, 64, 1)
	cases := []struct {
		name string
		run  func() error
		want error
		text string
	}{
		{"nan loss", func() error {
			batch, err := MakeBatch(SFT, tok, good, b, false)
			if err != nil {
				return err
			}
			defer batch.Close()
			d, _ := runtime.Data[float32](batch.Tensors[3].Tensor) // image_embeds
			m, _ := runtime.Data[float32](batch.Tensors[4].Tensor) // image_mask
			d[0], m[0] = float32(math.NaN()), 1
			_, err = eng.Step(ctx, b, batch.Tensors, 1e-3)
			return err
		}, ErrNonFinite, "non-finite"},
		{"shape mismatch", func() error {
			batch, err := MakeBatch(SFT, tok, good, Bucket{Batch: 2, Length: 14}, false)
			if err != nil {
				return err
			}
			defer batch.Close()
			_, err = eng.Step(ctx, b, batch.Tensors, 1e-3)
			return err
		}, runtime.ErrIOMismatch, "input_ids"},
		{"row too long", func() error {
			_, err := MakeBatch(SFT, tok, syntheticRows(1, 20, 64, 1), b, false)
			return err
		}, ErrData, "do not fit"},
		{"no answer span", func() error {
			r := good[0]
			r.AnswerStart = r.AnswerEnd
			_, err := MakeBatch(SFT, tok, []Row{r}, b, false)
			return err
		}, ErrData, "answer span"},
		{"unknown objective", func() error {
			_, err := BuildGraph("dpo", cfg, b, LossConfig{})
			return err
		}, ErrConfig, "dpo"},
		{"bad grpo eps", func() error {
			_, err := BuildGraph(GRPO, cfg, b, LossConfig{EpsLow: 1.5})
			return err
		}, ErrConfig, "epsilon_low"},
		{"op without gradient", func() error {
			g := graph.New("topk")
			x := g.Input("x", graph.Float32, graph.Dims(4))
			w := g.Input("w", graph.Float32, graph.Dims(4))
			y := g.AddNode("TopK", []*graph.Value{g.Mul(x, w), g.ConstInt64s(2)}, nil,
				graph.OutType{DType: graph.Float32, Shape: graph.Dims(2)}, graph.OutType{DType: graph.Int64, Shape: graph.Dims(2)})
			g.Output(OutLoss, g.ReduceSum(y[0], nil, false))
			_, err := graph.BuildTrainStep(g, graph.TrainStepConfig{Params: []string{"w"}})
			return err
		}, graph.ErrNoGradRule, "TopK"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tc.want, tc.text)
			}
		})
	}
	if st.Step != 0 {
		t.Fatalf("a failed step advanced the state to %d", st.Step)
	}
}
