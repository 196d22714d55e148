package data

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
)

// Stats is a dataset card: how many items a benchmark has by modality,
// question type, split and dataset, and how its answers spread over the
// option letters.
type Stats struct {
	Items          int            `json:"items"`
	Images         int            `json:"images"` // distinct image paths
	ByModality     map[string]int `json:"by_modality"`
	ByQuestionType map[string]int `json:"by_question_type"`
	BySplit        map[string]int `json:"by_split"`
	ByDataset      map[string]int `json:"by_dataset"`
	ByOptionCount  map[int]int    `json:"by_option_count"`
	// AnswerLetters counts the correct letter over all items.
	AnswerLetters map[string]int `json:"answer_letters"`
	// Invalid counts items whose gt_answer is not among their options.
	Invalid int `json:"invalid"`
}

// ComputeStats counts items into a Stats card. Empty question types and
// splits are counted under "(none)".
func ComputeStats(items []Item) Stats {
	s := Stats{
		Items: len(items), ByModality: map[string]int{}, ByQuestionType: map[string]int{},
		BySplit: map[string]int{}, ByDataset: map[string]int{}, ByOptionCount: map[int]int{},
		AnswerLetters: map[string]int{},
	}
	images := map[string]bool{}
	for _, it := range items {
		images[it.ImagePath] = true
		s.ByModality[orNone(it.ModalityType)]++
		s.ByQuestionType[orNone(it.QuestionType)]++
		s.BySplit[orNone(it.Split)]++
		s.ByDataset[orNone(it.Dataset)]++
		s.ByOptionCount[len(it.Options())]++
		l, err := it.AnswerLetter()
		if err != nil {
			s.Invalid++
			continue
		}
		s.AnswerLetters[l]++
	}
	s.Images = len(images)
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// WriteText prints the card as aligned tables: one section per grouping,
// rows sorted by count (then name), with percentages.
func (s Stats) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "items\t%d\t\n", s.Items)
	fmt.Fprintf(tw, "images\t%d\t\n", s.Images)
	if s.Invalid > 0 {
		fmt.Fprintf(tw, "invalid answers\t%d\t\n", s.Invalid)
	}
	section(tw, "modality", s.ByModality, s.Items)
	section(tw, "question type", s.ByQuestionType, s.Items)
	section(tw, "split", s.BySplit, s.Items)
	section(tw, "dataset", s.ByDataset, s.Items)
	opts := map[string]int{}
	for n, c := range s.ByOptionCount {
		opts[fmt.Sprintf("%d options", n)] = c
	}
	section(tw, "options per item", opts, s.Items)
	fmt.Fprintf(tw, "\nanswer letter\tcount\tshare\t\n")
	for i := 0; i < MaxOptions; i++ {
		l := Letters[i : i+1]
		fmt.Fprintf(tw, "%s\t%d\t%s\t\n", l, s.AnswerLetters[l], pct(s.AnswerLetters[l], s.Items-s.Invalid))
	}
	return tw.Flush()
}

func section(w io.Writer, title string, m map[string]int, total int) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	fmt.Fprintf(w, "\n%s\tcount\tshare\t\n", title)
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%d\t%s\t\n", k, m[k], pct(m[k], total))
	}
}

func pct(n, total int) string {
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(total))
}
