package data

import "testing"

func TestExtractAnswer(t *testing.T) {
	opts4 := []string{"Normal", "Pneumonia", "Abnormal growth", "X-ray."}
	opts2 := []string{"normal", "benign"}
	cases := []struct {
		name   string
		out    string
		opts   []string
		want   int
		wantOK bool
	}{
		{"answer tag letter", "<think>looks clear</think><answer>B</answer>", opts4, 1, true},
		{"answer tag lower letter", "<answer> c </answer>", opts4, 2, true},
		{"answer tag text", "<answer>pneumonia</answer>", opts4, 1, true},
		{"last answer tag wins", "<answer>A</answer> wait <answer>D</answer>", opts4, 3, true},
		{"answer tag garbage", "<answer>maybe</answer>", opts4, -1, false},
		{"bare letter", "C", opts4, 2, true},
		{"bare letter with dot", " D. ", opts4, 3, true},
		{"parenthesised", "(A)", opts4, 0, true},
		{"letter led text", "B. Pneumonia", opts4, 1, true},
		{"stated letter", "I think the answer is C because", opts4, 2, true},
		{"answer colon", "Answer: (D)", opts4, 3, true},
		{"article a is not a letter", "a normal chest", opts4, 0, true},
		{"option text exact", "x ray", opts4, 3, true},
		{"option text inside sentence", "This image shows pneumonia in the lung.", opts4, 1, true},
		{"two options named", "normal or pneumonia", opts4, -1, false},
		{"nothing", "I cannot tell.", opts4, -1, false},
		{"empty", "", opts4, -1, false},
		{"letter beyond options", "C", opts2, -1, false},
		{"letter beyond options in tag", "<answer>D</answer>", opts2, -1, false},
		{"word boundary", "abnormality", opts2, -1, false},
		{"no options", "A", nil, -1, false},
		{"nested option text keeps longer", "Abnormal growth", []string{"growth", "Abnormal growth"}, 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := ExtractAnswer(c.out, c.opts)
			if ok != c.wantOK || (ok && got != c.want) {
				t.Fatalf("ExtractAnswer(%q) = %d, %v; want %d, %v", c.out, got, ok, c.want, c.wantOK)
			}
		})
	}
}

func BenchmarkExtractAnswer(b *testing.B) {
	opts := []string{"Normal", "Pneumonia", "Abnormal growth", "X-ray."}
	for i := 0; i < b.N; i++ {
		ExtractAnswer("<think>the lungs show consolidation</think><answer>B</answer>", opts)
		ExtractAnswer("The image most likely shows pneumonia.", opts)
	}
}
