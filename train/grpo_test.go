package train

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/data"
)

// tokenReward is a test reward with spread: the first completion token's
// id modulo 7, over 6, so groups rarely tie even for a random model.
type tokenReward struct{}

func (tokenReward) Name() string { return "first_token" }

func (tokenReward) Rewards(_ context.Context, cs []Completion) ([]float64, error) {
	out := make([]float64, len(cs))
	for i, c := range cs {
		out[i] = float64(c.Tokens[0]%7) / 6
	}
	return out, nil
}

func validGRPOConfig() GRPOConfig {
	return GRPOConfig{RunConfig: RunConfig{Steps: 2, Schedule: Schedule{LR: 1e-3}, Buckets: Buckets{Batch: 8, Lengths: []int{160}},
		OutDir: "unused"}, Group: 4, Rewards: []WeightedReward{{Func: ExactMatch{}, Weight: 1}}}
}

// TestGRPOConfigErrors: every bad setting is an ErrConfig naming it.
func TestGRPOConfigErrors(t *testing.T) {
	tests := []struct {
		name, want string
		edit       func(*GRPOConfig)
	}{
		{"group of one", "group 1", func(c *GRPOConfig) { c.Group = 1 }},
		{"negative group", "group -2", func(c *GRPOConfig) { c.Group = -2 }},
		{"weights all zero", "every reward weight is zero", func(c *GRPOConfig) {
			c.Rewards = []WeightedReward{{Func: ExactMatch{}}, {Func: Format{}}}
		}},
		{"no rewards", "every reward weight is zero", func(c *GRPOConfig) { c.Rewards = nil }},
		{"negative weight", "weight -1", func(c *GRPOConfig) { c.Rewards[0].Weight = -1 }},
		{"NaN weight", "weight NaN", func(c *GRPOConfig) { c.Rewards[0].Weight = math.NaN() }},
		{"nil function", "no function", func(c *GRPOConfig) { c.Rewards = append(c.Rewards, WeightedReward{Weight: 1}) }},
		{"twice", "listed twice", func(c *GRPOConfig) { c.Rewards = append(c.Rewards, c.Rewards[0]) }},
		{"batch not whole groups", "multiple of the group", func(c *GRPOConfig) { c.Buckets.Batch = 6 }},
		{"batch below group", "multiple of the group", func(c *GRPOConfig) { c.Buckets.Batch = 2 }},
		{"iterations", "iterations -1", func(c *GRPOConfig) { c.Iterations = -1 }},
		{"temperature", "temperature -1", func(c *GRPOConfig) { c.Temperature = -1 }},
		{"top_p", "top_p 1.5", func(c *GRPOConfig) { c.TopP = 1.5 }},
		{"top_k", "top_k -3", func(c *GRPOConfig) { c.TopK = -3 }},
		{"max_new_tokens", "max_new_tokens -5", func(c *GRPOConfig) { c.MaxNewTokens = -5 }},
		{"epsilon_low", "epsilon_low 1", func(c *GRPOConfig) { c.EpsLow = 1 }},
		{"beta", "beta -0.1", func(c *GRPOConfig) { c.Beta = -0.1 }},
		{"advantage eps", "advantage epsilon -1", func(c *GRPOConfig) { c.AdvantageEps = -1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validGRPOConfig()
			tc.edit(&c)
			err := c.Validate()
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrConfig containing %q", err, tc.want)
			}
		})
	}
	if err := validGRPOConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

// TestGRPOLossDefaults: zero settings take TRL's defaults.
func TestGRPOLossDefaults(t *testing.T) {
	got := GRPOConfig{}.Loss()
	want := LossConfig{Temperature: 1, EpsLow: 0.2, EpsHigh: 0.2}
	if got != want {
		t.Fatalf("Loss() = %+v, want %+v", got, want)
	}
	got = GRPOConfig{Temperature: 0.7, EpsLow: 0.1, EpsHigh: 0.28, Beta: 0.04}.Loss()
	if want := (LossConfig{Temperature: 0.7, EpsLow: 0.1, EpsHigh: 0.28, Beta: 0.04}); got != want {
		t.Fatalf("Loss() = %+v, want %+v", got, want)
	}
}

func item(opts []string, gt string) data.Item {
	it := data.Item{QuestionID: "q", Question: "Which?", GTAnswer: gt}
	_ = it.SetOptions(opts)
	return it
}

// TestRewardFunctions checks exact match and format on typical outputs.
func TestRewardFunctions(t *testing.T) {
	it := item([]string{"CT", "MRI", "X-Ray", "Ultrasound"}, "X-Ray") // correct letter C
	tests := []struct {
		text          string
		match, format float64
	}{
		{"<think>gray chest film</think><answer>C</answer>", 1, 1},
		{"<think>x</think>\n<answer> C </answer>\n", 1, 1},
		{"<think>x</think><answer>B</answer>", 0, 1},
		{"<answer>C</answer>", 1, 0},
		{"<think>x</think><answer>X-Ray</answer>", 0, 1},
		{"<think>x</think><answer>(C)</answer>", 0, 1},
		{"C", 0, 0},
		{"<answer>A</answer> then <answer>C</answer>", 1, 0},
		{"<think>x</think><answer>c</answer>", 0, 1},
		{"<think>unclosed<answer>C</answer>", 1, 0},
		{"", 0, 0},
	}
	var cs []Completion
	for _, tc := range tests {
		cs = append(cs, Completion{Item: it, Text: tc.text, Tokens: []int{1}})
	}
	ctx := context.Background()
	m, err := ExactMatch{}.Rewards(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Format{}.Rewards(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range tests {
		if m[i] != tc.match || f[i] != tc.format {
			t.Errorf("%q: exact_match %g format %g, want %g %g", tc.text, m[i], f[i], tc.match, tc.format)
		}
	}
	bad := []Completion{{Item: item([]string{"a", "b"}, "zzz"), Text: "<answer>A</answer>"}}
	if _, err := (ExactMatch{}).Rewards(ctx, bad); !errors.Is(err, ErrData) {
		t.Fatalf("item without a valid answer: err = %v, want ErrData", err)
	}
	if _, err := (ModelReward{}).Rewards(ctx, cs); !errors.Is(err, ErrConfig) {
		t.Fatalf("ModelReward without a bundle: err = %v, want ErrConfig", err)
	}
}

// TestNormalizeRewardScore maps the paper's levels onto [0, 1].
func TestNormalizeRewardScore(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{
		{LevelOriginal, 1}, {LevelPerturbed, 0.75}, {LevelIncoherent, 0.375}, {LevelIrrelevant, 0},
		{25, 1}, {-40, 0}, {math.NaN(), 0}, {math.Inf(1), 1},
	} {
		if got := NormalizeRewardScore(tc.in); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("NormalizeRewardScore(%g) = %g, want %g", tc.in, got, tc.want)
		}
	}
}

// TestAdvantages checks the group normalisation against hand values.
func TestAdvantages(t *testing.T) {
	rs := []float64{1, 0, 0, 0, 0.5, 0.5, 0.5, 0.5}
	adv, zero, meanSD, err := Advantages(rs, 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	sd := math.Sqrt((0.75*0.75 + 3*0.25*0.25) / 3) // unbiased std of {1,0,0,0}
	want := []float64{0.75 / sd, -0.25 / sd, -0.25 / sd, -0.25 / sd, 0, 0, 0, 0}
	for i := range want {
		if math.Abs(adv[i]-want[i]) > 1e-12 {
			t.Fatalf("adv = %v, want %v", adv, want)
		}
	}
	if zero != 0.5 || math.Abs(meanSD-sd/2) > 1e-12 {
		t.Fatalf("zero-std share %g, mean std %g; want 0.5 and %g", zero, meanSD, sd/2)
	}
	for _, bad := range []struct {
		rs []float64
		g  int
	}{{rs, 3}, {rs, 1}, {rs[:1], 1}} {
		if _, _, _, err := Advantages(bad.rs, bad.g, 1e-4); !errors.Is(err, ErrConfig) {
			t.Fatalf("Advantages(%d rewards, group %d): err = %v, want ErrConfig", len(bad.rs), bad.g, err)
		}
	}
}

// failingReward returns the wrong number of rewards, or NaN.
type failingReward struct{ nan bool }

func (failingReward) Name() string { return "failing" }

func (f failingReward) Rewards(_ context.Context, cs []Completion) ([]float64, error) {
	if f.nan {
		return slices.Repeat([]float64{math.NaN()}, len(cs)), nil
	}
	return []float64{1}, nil
}

// TestScoreCompletionsErrors: a reward function's bad output names it.
func TestScoreCompletionsErrors(t *testing.T) {
	cs := make([]Completion, 4)
	for _, tc := range []struct {
		f    failingReward
		want error
	}{{failingReward{}, ErrData}, {failingReward{nan: true}, ErrNonFinite}} {
		_, err := scoreCompletions(context.Background(), []WeightedReward{{Func: tc.f, Weight: 1}}, cs, 2, 1e-4)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "failing") {
			t.Fatalf("err = %v, want %v naming the function", err, tc.want)
		}
	}
}
