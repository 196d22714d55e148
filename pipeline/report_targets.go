package pipeline

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// MinImageUse is the image-use target: every policy's answers must move
// by at least this mean total variation when its images are swapped for
// ones of another modality.
const MinImageUse = 0.2

// modalityTables renders, for each benchmark, accuracy per modality of
// every row (mean ± sd over seeds, items per run).
func modalityTables(res *Results) string {
	return breakdownTables("Accuracy per modality", res.ByModality)
}

// questionTypeTables renders, for each benchmark, accuracy per question
// type of every row: which questions the image answers (modality,
// anatomy) and which only a label can teach (diagnosis, grading,
// attributes).
func questionTypeTables(res *Results) string {
	return breakdownTables("Accuracy per question type", res.ByQuestionType)
}

// breakdownTables renders a row → benchmark → group breakdown as one
// table per benchmark under the title; "" when it is empty.
func breakdownTables(title string, by map[string]map[string]map[string]Cell) string {
	if len(by) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## %s (%%, mean ± sd over seeds)\n", title)
	for _, bench := range []string{BenchTest, BenchHeldOut, BenchReal} {
		groups := map[string]int{}
		for _, byBench := range by {
			for g, c := range byBench[bench] {
				groups[g] = c.N
			}
		}
		if len(groups) == 0 {
			continue
		}
		names := slices.Sorted(maps.Keys(groups))
		fmt.Fprintf(&b, "\n### %s\n\n| system |", bench)
		for _, g := range names {
			fmt.Fprintf(&b, " %s (n=%d) |", g, groups[g])
		}
		b.WriteString("\n|---|" + strings.Repeat("---|", len(names)) + "\n")
		for _, row := range rowOrder {
			cells, ok := by[row][bench]
			if !ok {
				continue
			}
			fmt.Fprintf(&b, "| %s |", rowTitle[row])
			for _, g := range names {
				if c, ok := cells[g]; ok {
					fmt.Fprintf(&b, " %.1f ± %.1f |", 100*c.Mean, 100*c.Spread)
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// targets checks the shipped policy (the GRPO row) against the goals the
// loop is held to, with the numbers: beating the majority answer beyond
// noise on the test split and the real items, scoring above chance (the
// random row) on the held-out modalities, and every policy looking at its
// image (MinImageUse).
func targets(res *Results) []string {
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	var out []string
	beat := func(what, row, base, bench string) {
		g, ok1 := res.Table[row][bench]
		m, ok2 := res.Table[base][bench]
		if !ok1 || !ok2 {
			return
		}
		n := noise(g, m)
		out = append(out, fmt.Sprintf("%s on %s: %s (%.1f vs %.1f)%s", what, bench,
			verdict(g.Mean > m.Mean && n == ""), 100*g.Mean, 100*m.Mean, n))
	}
	beat("the policy after GRPO beats the majority answer beyond noise", PolicyGRPO, "majority", BenchTest)
	beat("the policy after GRPO beats the majority answer beyond noise", PolicyGRPO, "majority", BenchReal)
	beat("the policy after GRPO scores above chance (the random answerer) beyond noise", PolicyGRPO, "random", BenchHeldOut)
	for _, row := range rowOrder {
		if u, ok := res.ImageUse[row]; ok {
			out = append(out, fmt.Sprintf("%s looks at the image (answers move ≥ %.1f when it is swapped): %s (%.3f)",
				rowTitle[row], MinImageUse, verdict(u.MeanTV >= MinImageUse), u.MeanTV))
		}
	}
	return out
}
