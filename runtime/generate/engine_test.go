package generate

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// tableModel is a fake Session whose next logits depend only on the last
// token of each row: table[tok] is the row of logits after tok.
type tableModel struct {
	table [][]float32
	vocab int
	steps int   // Next calls so far
	fail  error // returned by Next when set
	seen  [][]int
}

func newTableModel(vocab int, seed uint64) *tableModel {
	rng := rand.New(rand.NewPCG(seed, 1))
	t := make([][]float32, vocab)
	for i := range t {
		t[i] = make([]float32, vocab)
		for j := range t[i] {
			t[i][j] = float32(rng.NormFloat64() * 2)
		}
	}
	return &tableModel{table: t, vocab: vocab}
}

func (m *tableModel) logitsFor(tokens []int) Logits {
	l := Logits{Rows: len(tokens), Vocab: m.vocab, Data: make([]float32, 0, len(tokens)*m.vocab)}
	for _, tok := range tokens {
		l.Data = append(l.Data, m.table[tok]...)
	}
	return l
}

func (m *tableModel) Next(_ context.Context, tokens []int) (Logits, error) {
	m.steps++
	m.seen = append(m.seen, append([]int(nil), tokens...))
	if m.fail != nil {
		return Logits{}, m.fail
	}
	return m.logitsFor(tokens), nil
}

func TestGreedyFollowsArgmaxChain(t *testing.T) {
	m := newTableModel(16, 1)
	start := []int{3}
	res, err := Run(context.Background(), m, m.logitsFor(start), []Options{{MaxNewTokens: 10}})
	if err != nil {
		t.Fatal(err)
	}
	prev := start[0]
	for i, tok := range res[0].Tokens {
		if want := argmax(m.table[prev]); tok != want {
			t.Fatalf("token %d = %d, want argmax %d", i, tok, want)
		}
		if want := logSoftmaxAt(m.table[prev], tok, 1); math.Abs(float64(res[0].LogProbs[i])-want) > 1e-6 {
			t.Fatalf("logprob %d = %v, want %v", i, res[0].LogProbs[i], want)
		}
		prev = tok
	}
	if len(res[0].Tokens) != 10 || res[0].FinishReason != FinishLength {
		t.Fatalf("got %d tokens, reason %q; want 10, %q", len(res[0].Tokens), res[0].FinishReason, FinishLength)
	}
}

func TestStopTokenAndBudgetPerRow(t *testing.T) {
	m := newTableModel(8, 2)
	// Greedy from token 0: find the first generated token and use it as the
	// stop token of row 0, so row 0 stops after one token.
	stop := argmax(m.table[0])
	opts := []Options{{MaxNewTokens: 20, StopTokens: []int{stop}}, {MaxNewTokens: 5}}
	res, err := Run(context.Background(), m, m.logitsFor([]int{0, 0}), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := res[0]; len(got.Tokens) != 1 || got.Tokens[0] != stop || got.FinishReason != FinishStop {
		t.Errorf("row 0 = %+v, want [%d] stop", got, stop)
	}
	if got := res[1]; len(got.Tokens) != 5 || got.FinishReason != FinishLength {
		t.Errorf("row 1 = %+v, want 5 tokens, length", got)
	}
	// The engine calls Next only while a row is active: 4 steps after the
	// first token for row 1.
	if m.steps != 4 {
		t.Errorf("Next called %d times, want 4", m.steps)
	}
}

func TestStopString(t *testing.T) {
	m := newTableModel(10, 3)
	detok := func(ids []int) string {
		var b strings.Builder
		for _, id := range ids {
			b.WriteString(strconv.Itoa(id))
		}
		return b.String()
	}
	// Run greedy once to learn the sequence, then stop at its 3rd token's text.
	ref, err := Run(context.Background(), m, m.logitsFor([]int{1}), []Options{{MaxNewTokens: 6}})
	if err != nil {
		t.Fatal(err)
	}
	stop := detok(ref[0].Tokens[:3])
	res, err := Run(context.Background(), m, m.logitsFor([]int{1}),
		[]Options{{MaxNewTokens: 6, StopStrings: []string{stop}, Detokenize: detok}})
	if err != nil {
		t.Fatal(err)
	}
	if got := detok(res[0].Tokens); !strings.Contains(got, stop) || len(res[0].Tokens) > 3 || res[0].FinishReason != FinishStop {
		t.Errorf("completion %q (%s), want it to end at %q", got, res[0].FinishReason, stop)
	}
}

func TestSamplingIsSeededAndBatchInvariant(t *testing.T) {
	m := newTableModel(32, 4)
	o := Options{MaxNewTokens: 30, Temperature: 0.9, TopK: 20, TopP: 0.95, Seed: 42}
	alone, err := Run(context.Background(), m, m.logitsFor([]int{5}), []Options{o})
	if err != nil {
		t.Fatal(err)
	}
	other := o
	other.Seed = 7
	batch, err := Run(context.Background(), m, m.logitsFor([]int{9, 5, 2}), []Options{other, o, other})
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(alone[0].Tokens, batch[1].Tokens) {
		t.Errorf("row differs in a batch:\nalone %v\nbatch %v", alone[0].Tokens, batch[1].Tokens)
	}
	if equalInts(batch[0].Tokens, batch[1].Tokens) {
		t.Errorf("different seeds and prompts gave the same completion %v", batch[0].Tokens)
	}
}

// TestTemperatureAfter samples hot everywhere except right after a
// trigger token, where the override 0 must pick the argmax.
func TestTemperatureAfter(t *testing.T) {
	m := newTableModel(6, 12)
	const trigger = 2
	var afterTrigger, sampledOff int
	for seed := range uint64(40) {
		o := Options{MaxNewTokens: 30, Temperature: 4, Seed: seed, TemperatureAfter: map[int]float32{trigger: 0}}
		res, err := Run(context.Background(), m, m.logitsFor([]int{1}), []Options{o})
		if err != nil {
			t.Fatal(err)
		}
		toks := res[0].Tokens
		for i := 1; i < len(toks); i++ {
			prev := m.table[toks[i-1]]
			if toks[i-1] != trigger {
				if toks[i] != argmax(prev) {
					sampledOff++
				}
				continue
			}
			afterTrigger++
			if want := argmax(prev); toks[i] != want {
				t.Fatalf("seed %d: token %d after the trigger = %d, want argmax %d", seed, i, toks[i], want)
			}
			if want := logSoftmaxAt(prev, toks[i], 1); math.Abs(float64(res[0].LogProbs[i])-want) > 1e-6 {
				t.Fatalf("seed %d: greedy logprob %v, want %v", seed, res[0].LogProbs[i], want)
			}
		}
	}
	if afterTrigger < 20 || sampledOff < 20 {
		t.Fatalf("the test saw %d picks after the trigger and %d non-argmax picks elsewhere; want ≥ 20 of each",
			afterTrigger, sampledOff)
	}
}

func TestTopKOneIsGreedy(t *testing.T) {
	m := newTableModel(32, 5)
	g, _ := Run(context.Background(), m, m.logitsFor([]int{1}), []Options{{MaxNewTokens: 20}})
	k, _ := Run(context.Background(), m, m.logitsFor([]int{1}), []Options{{MaxNewTokens: 20, Temperature: 1.5, TopK: 1, Seed: 9}})
	if !equalInts(g[0].Tokens, k[0].Tokens) {
		t.Errorf("top-k 1 %v != greedy %v", k[0].Tokens, g[0].Tokens)
	}
}

// TestSamplingDistribution draws many tokens from one row of logits and
// compares the frequencies with the expected truncated distribution.
func TestSamplingDistribution(t *testing.T) {
	logits := []float32{2, 1.5, 1, 0.5, 0, -1, -2, -3}
	cases := []struct {
		name string
		opts Options
		want []float64 // expected probabilities (unnormalised ok)
	}{
		{"temperature 1", Options{Temperature: 1}, softmax64(logits, 1)},
		{"temperature 0.5", Options{Temperature: 0.5}, softmax64(logits, 0.5)},
		{"top-k 3", Options{Temperature: 1, TopK: 3}, truncate(softmax64(logits, 1), 3)},
		// cumulative mass .415, .667, …: top-p 0.6 keeps 2 tokens, 0.7 keeps 3.
		{"top-p 0.6", Options{Temperature: 1, TopP: 0.6}, truncate(softmax64(logits, 1), 2)},
		{"top-p 0.7", Options{Temperature: 1, TopP: 0.7}, truncate(softmax64(logits, 1), 3)},
		{"top-k 3 and top-p 0.6", Options{Temperature: 1, TopK: 3, TopP: 0.6}, truncate(softmax64(logits, 1), 2)},
	}
	const n = 40000
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Seed = 11
			r := &row{opts: c.opts, rng: rand.New(rand.NewPCG(11, 0))}
			counts := make([]float64, len(logits))
			for range n {
				tok, _ := r.pick(logits)
				counts[tok]++
			}
			want := normalise(c.want)
			for i := range counts {
				got := counts[i] / n
				// 5 standard deviations of a binomial proportion, plus slack.
				tol := 5*math.Sqrt(want[i]*(1-want[i])/n) + 1e-9
				if math.Abs(got-want[i]) > tol {
					t.Errorf("token %d: frequency %.4f, want %.4f ± %.4f", i, got, want[i], tol)
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	m := newTableModel(4, 6)
	boom := errors.New("boom")
	cases := []struct {
		name  string
		first Logits
		opts  []Options
		fail  error
		ctx   func() context.Context
		want  error
		text  string
	}{
		{name: "rows mismatch", first: m.logitsFor([]int{0}), opts: []Options{{}, {}}, want: ErrBadLogits},
		{name: "short data", first: Logits{Rows: 1, Vocab: 4, Data: make([]float32, 3)}, opts: []Options{{}}, want: ErrBadLogits},
		{name: "negative temperature", first: m.logitsFor([]int{0}), opts: []Options{{Temperature: -1}}, text: "Temperature"},
		{name: "negative temperature after a token", first: m.logitsFor([]int{0}),
			opts: []Options{{TemperatureAfter: map[int]float32{2: -0.5}}}, text: "TemperatureAfter[2]"},
		{name: "top-p above 1", first: m.logitsFor([]int{0}), opts: []Options{{TopP: 1.5}}, text: "TopP"},
		{name: "stop strings without detokenizer", first: m.logitsFor([]int{0}), opts: []Options{{StopStrings: []string{"x"}}}, text: "Detokenize"},
		{name: "session error", first: m.logitsFor([]int{0}), opts: []Options{{MaxNewTokens: 3}}, fail: boom, want: boom},
		{name: "cancelled", first: m.logitsFor([]int{0}), opts: []Options{{MaxNewTokens: 3}}, want: context.Canceled,
			ctx: func() context.Context { c, cancel := context.WithCancel(context.Background()); cancel(); return c }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m.fail = c.fail
			ctx := context.Background()
			if c.ctx != nil {
				ctx = c.ctx()
			}
			_, err := Run(ctx, m, c.first, c.opts)
			if err == nil {
				t.Fatal("no error")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("error %v, want %v", err, c.want)
			}
			if c.text != "" && !strings.Contains(err.Error(), c.text) {
				t.Errorf("error %q does not mention %q", err, c.text)
			}
		})
	}
}

func TestOptionProbs(t *testing.T) {
	logits := []float32{0, 3, 1, 2, -1}
	p := OptionProbs(logits, []int{1, 2, 3})
	want := softmax64([]float32{3, 1, 2}, 1)
	var sum float64
	for i := range p {
		sum += p[i]
		if math.Abs(p[i]-want[i]) > 1e-12 {
			t.Errorf("p[%d] = %v, want %v", i, p[i], want[i])
		}
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Errorf("sum %v, want 1", sum)
	}
	if len(OptionProbs(logits, nil)) != 0 {
		t.Error("no options should give no probabilities")
	}
}

func softmax64(x []float32, t float64) []float64 {
	out := make([]float64, len(x))
	for i := range x {
		out[i] = math.Exp(logSoftmaxAt(x, i, t))
	}
	return out
}

func truncate(p []float64, keep int) []float64 {
	out := append([]float64(nil), p...)
	for i := keep; i < len(out); i++ {
		out[i] = 0 // the test logits are sorted descending
	}
	return out
}

func normalise(p []float64) []float64 {
	var s float64
	for _, v := range p {
		s += v
	}
	out := make([]float64, len(p))
	for i, v := range p {
		out[i] = v / s
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSuppressTokens(t *testing.T) {
	logits := []float32{2, 1.5, 1, 0.5, 0, -1, -2, -3}
	// Greedy skips the suppressed argmax; the log-prob is still that of
	// the full distribution.
	r := &row{opts: Options{SuppressTokens: []int{0, 0}}}
	tok, lp := r.pick(logits)
	if tok != 1 {
		t.Fatalf("greedy picked %d, want 1", tok)
	}
	if want := logSoftmaxAt(logits, 1, 1); math.Abs(float64(lp)-want) > 1e-6 {
		t.Errorf("log-prob %v, want %v (full distribution)", lp, want)
	}
	// Sampling never draws a suppressed token and renormalises before
	// top-k: top-k 2 keeps tokens 1 and 3.
	r = &row{opts: Options{Temperature: 1, TopK: 2, SuppressTokens: []int{0, 2}}, rng: rand.New(rand.NewPCG(3, 0))}
	seen := map[int]int{}
	for range 2000 {
		tok, _ := r.pick(logits)
		seen[tok]++
	}
	if seen[0]+seen[2] > 0 || seen[1] == 0 || seen[3] == 0 || len(seen) != 2 {
		t.Errorf("draws %v, want only tokens 1 and 3", seen)
	}
	// Everything suppressed: the suppression is ignored rather than
	// leaving nothing to draw.
	r = &row{opts: Options{Temperature: 1, SuppressTokens: []int{0, 1, 2, 3, 4, 5, 6, 7}}, rng: rand.New(rand.NewPCG(3, 0))}
	if tok, _ := r.pick(logits); tok < 0 || tok >= len(logits) {
		t.Errorf("picked %d", tok)
	}
	if _, err := Run(context.Background(), newTableModel(4, 1), newTableModel(4, 1).logitsFor([]int{0}),
		[]Options{{SuppressTokens: []int{-1}}}); err == nil || !strings.Contains(err.Error(), "SuppressTokens") {
		t.Errorf("negative suppress token: error %v", err)
	}
}
