package fake

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/medgr2/medgr2/server/model"
)

func TestVQADeterministicAloneOrInBatch(t *testing.T) {
	m := NewVQA(Options{})
	a := model.VQAInput{ImageHash: "aa", Question: "q1", Options: []string{"x", "y", "z"}, Reason: true}
	b := model.VQAInput{ImageHash: "bb", Question: "q2", Options: []string{"x", "y"}}
	alone, err := m.AnswerBatch(context.Background(), []model.VQAInput{a})
	if err != nil {
		t.Fatal(err)
	}
	both, err := m.AnswerBatch(context.Background(), []model.VQAInput{b, a})
	if err != nil {
		t.Fatal(err)
	}
	if alone[0].Answer != both[1].Answer || alone[0].Reasoning != both[1].Reasoning {
		t.Fatalf("answer differs alone %+v vs in batch %+v", alone[0], both[1])
	}
	var sum float64
	for _, p := range alone[0].Probs {
		sum += p
	}
	if math.Abs(sum-1) > 1e-9 || alone[0].Reasoning == "" || both[0].Reasoning != "" {
		t.Fatalf("bad output %+v", alone[0])
	}
	if m.Batches() != 2 || m.Items() != 3 {
		t.Fatalf("counters %d/%d", m.Batches(), m.Items())
	}
}

func TestCostAndCancel(t *testing.T) {
	m := NewReward(Options{BatchCost: 30 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if _, err := m.ScoreBatch(ctx, []model.ScoreInput{{}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	start := time.Now()
	s, err := m.ScoreBatch(context.Background(), []model.ScoreInput{{Question: "q"}})
	if err != nil || time.Since(start) < 30*time.Millisecond || s[0] < -6 || s[0] > 10 {
		t.Fatalf("score %v err %v", s, err)
	}
}

func TestFailHook(t *testing.T) {
	m := NewGenerator(Options{Fail: func(int) error { return errors.New("broken") }})
	if _, err := m.GenerateBatch(context.Background(), []model.GenerateInput{{NumItems: 1}}); err == nil {
		t.Fatal("want error")
	}
}

func TestChatEmitsAndLimits(t *testing.T) {
	m := NewChat(Options{})
	var got string
	out, err := m.ChatBatch(context.Background(), []model.ChatInput{{MaxTokens: 3, Emit: func(d string) { got += d }}})
	if err != nil {
		t.Fatal(err)
	}
	if got != out[0].Text || out[0].FinishReason != "length" || out[0].CompletionTokens != 3 {
		t.Fatalf("out %+v streamed %q", out[0], got)
	}
}
