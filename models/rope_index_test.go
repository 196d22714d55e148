package models

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestRopeIndex checks positions against values worked out by hand from
// Hugging Face's Qwen2VLModel.get_rope_index (P = image pad id 9, S =
// vision start 8, E = vision end 7).
func TestRopeIndex(t *testing.T) {
	const P = 9
	cases := []struct {
		name  string
		ids   []int
		mask  []int64
		grids [][3]int64
		want  [3][]int64
		next  int64
	}{
		{name: "text only", ids: []int{1, 2, 3}, mask: []int64{1, 1, 1},
			want: [3][]int64{{0, 1, 2}, {0, 1, 2}, {0, 1, 2}}, next: 3},
		{name: "left padding", ids: []int{0, 0, 5, 6}, mask: []int64{0, 0, 1, 1},
			want: [3][]int64{{1, 1, 0, 1}, {1, 1, 0, 1}, {1, 1, 0, 1}}, next: 2},
		// grid (1, 4, 6) → merged 1×2×3 = 6 tokens at start 2: t = 2,
		// h = 2+row, w = 2+col; text after continues from 2+max(0,1,2)+1 = 5.
		{name: "one image", ids: []int{1, 8, P, P, P, P, P, P, 7, 4},
			mask: []int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, grids: [][3]int64{{1, 4, 6}},
			want: [3][]int64{
				{0, 1, 2, 2, 2, 2, 2, 2, 5, 6},
				{0, 1, 2, 2, 2, 3, 3, 3, 5, 6},
				{0, 1, 2, 3, 4, 2, 3, 4, 5, 6}}, next: 7},
		// two images of 2×2 grid tokens... (1, 2, 2) is one token each.
		{name: "two images with padding", ids: []int{0, 8, P, 7, 8, P, 7}, mask: []int64{0, 1, 1, 1, 1, 1, 1},
			grids: [][3]int64{{1, 2, 2}, {1, 2, 2}},
			want:  [3][]int64{{1, 0, 1, 2, 3, 4, 5}, {1, 0, 1, 2, 3, 4, 5}, {1, 0, 1, 2, 3, 4, 5}}, next: 6},
		// a tall image: grid (1, 6, 2) → 3×1 tokens; next text at 1+3 = 4.
		{name: "tall image", ids: []int{8, P, P, P, 7}, mask: []int64{1, 1, 1, 1, 1}, grids: [][3]int64{{1, 6, 2}},
			want: [3][]int64{{0, 1, 1, 1, 4}, {0, 1, 2, 3, 4}, {0, 1, 1, 1, 4}}, next: 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pos, next, err := RopeIndex(c.ids, c.mask, P, c.grids, 2)
			if err != nil {
				t.Fatal(err)
			}
			for r := range 3 {
				if !slices.Equal(pos[r], c.want[r]) {
					t.Errorf("row %d = %v, want %v", r, pos[r], c.want[r])
				}
			}
			if next != c.next {
				t.Errorf("next = %d, want %d", next, c.next)
			}
		})
	}
}

func TestRopeIndexErrors(t *testing.T) {
	const P = 9
	ones := func(n int) []int64 {
		m := make([]int64, n)
		for i := range m {
			m[i] = 1
		}
		return m
	}
	cases := []struct {
		name  string
		ids   []int
		mask  []int64
		grids [][3]int64
		merge int
		want  error
	}{
		{"mask length", []int{1, 2}, []int64{1}, nil, 2, ErrBadRequest},
		{"bad merge", []int{1}, ones(1), nil, 0, ErrBadRequest},
		{"pads without image", []int{1, P}, ones(2), nil, 2, ErrImageTokens},
		{"image without pads", []int{1, 2}, ones(2), [][3]int64{{1, 2, 2}}, 2, ErrImageTokens},
		{"too few pads", []int{P, P, 1}, ones(3), [][3]int64{{1, 4, 4}}, 2, ErrImageTokens},
		{"pads past the end", []int{1, P}, ones(2), [][3]int64{{1, 4, 4}}, 2, ErrImageTokens},
		{"grid not a multiple of merge", []int{P}, ones(1), [][3]int64{{1, 3, 2}}, 2, ErrImageTokens},
		{"zero grid", []int{P}, ones(1), [][3]int64{{0, 2, 2}}, 2, ErrImageTokens},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := RopeIndex(c.ids, c.mask, P, c.grids, c.merge); !errors.Is(err, c.want) {
				t.Errorf("error %v, want %v", err, c.want)
			}
		})
	}
}

func TestSpliceImages(t *testing.T) {
	const h, pad = 2, 7
	ids := []int64{pad, 1, pad, 2, pad, pad}
	mask := []int64{0, 1, 1, 1, 1, 1} // the first pad is padding, not an image slot
	feats := []float32{10, 11, 20, 21, 30, 31}
	want := []float32{-1, -1, 1, 1, 10, 11, 3, 3, 20, 21, 30, 31}
	for _, half := range []bool{false, true} {
		embeds := newFloatBuf(half, 12, 0)
		embeds.set(0, []float32{-1, -1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5})
		if err := spliceImages(embeds, ids, mask, pad, feats, h); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, 12)
		embeds.read(got, 0)
		if !slices.Equal(got, want) { // small integers are exact in float16
			t.Errorf("half=%v: embeds = %v, want %v", half, got, want)
		}
	}
	embeds := newFloatBuf(false, 12, 0)
	if err := spliceImages(embeds, ids, mask, pad, feats[:4], h); !errors.Is(err, ErrImageTokens) {
		t.Errorf("too few features: %v", err)
	}
	if err := spliceImages(embeds, ids, mask, pad, append(feats, 1, 2), h); !errors.Is(err, ErrImageTokens) {
		t.Errorf("too many features: %v", err)
	}
}

func TestParseSample(t *testing.T) {
	good := "Question: Which finding is shown\nin this chest X-ray?\nA. normal\nB. pneumonia\nC. effusion\nD. mass\n" +
		"<think>The right lower lobe is consolidated.</think><answer>B</answer> trailing"
	s, err := ParseSample("preamble " + good)
	if err != nil {
		t.Fatal(err)
	}
	if s.Item.Question != "Which finding is shown in this chest X-ray?" || s.Item.GTAnswer != "pneumonia" ||
		!slices.Equal(s.Item.Options(), []string{"normal", "pneumonia", "effusion", "mass"}) ||
		s.Reasoning != "The right lower lobe is consolidated." {
		t.Errorf("parsed %+v", s)
	}
	bad := []struct{ name, text, reason string }{
		{"no question", "A. x\nB. y\n<think>r</think><answer>A</answer>", "Question:"},
		{"empty question", "Question:\nA. x\nB. y\n<think>r</think><answer>A</answer>", "empty question"},
		{"one option", "Question: q\nA. x\n<think>r</think><answer>A</answer>", "1 options"},
		{"no think", "Question: q\nA. x\nB. y\n<answer>A</answer>", "<think>"},
		{"unclosed think", "Question: q\nA. x\nB. y\n<think>r <answer>A</answer>", "</think>"},
		{"no answer", "Question: q\nA. x\nB. y\n<think>r</think>", "<answer>"},
		{"letter beyond options", "Question: q\nA. x\nB. y\n<think>r</think><answer>C</answer>", "not one of"},
		{"unclosed answer", "Question: q\nA. x\nB. y\n<think>r</think><answer>A", "not one of"},
		{"random text", "lorem ipsum", "Question:"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSample(c.text)
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrUnparsed) || pe.Text != c.text {
				t.Fatalf("error %v, want a *ParseError", err)
			}
			if !strings.Contains(pe.Reason, c.reason) {
				t.Errorf("reason %q does not mention %q", pe.Reason, c.reason)
			}
		})
	}
}

func TestReasoning(t *testing.T) {
	cases := map[string]string{
		"<think> a b </think><answer>A</answer>": "a b",
		"no tags":                                "",
		"<think>unclosed":                        "unclosed",
		"x<think>1</think><think>2</think>":      "1",
	}
	for in, want := range cases {
		if got := Reasoning(in); got != want {
			t.Errorf("Reasoning(%q) = %q, want %q", in, got, want)
		}
	}
}
