// Package data reads, writes and describes OmniMedVQA-format multiple-choice
// datasets and the labelled image collections benchmarks are built from.
//
// # Items
//
// An Item is one OmniMedVQA question with OmniMedVQA's own JSON fields
// (question_id, dataset, question_type, modality_type, question,
// option_A…option_D, gt_answer as the answer text, image_path relative to
// the JSON file), plus an optional split. Load reads a JSON array or JSONL
// file, so a real OmniMedVQA QA file loads unchanged; Save writes either
// (by extension), deterministically. Malformed items are *ItemError values
// naming the file and index; by default they reject the file, with
// SkipInvalid they are reported and skipped. Nothing panics on bad input.
//
// # Answers
//
// ExtractAnswer turns model output into an option index: a letter inside
// <answer>…</answer>, a bare or stated letter, or the text of one option.
//
// # Collections
//
// A Collection is a folder with collection.json and labels.jsonl (see
// ../shared/data/README.md). LoadCollection exposes its images with
// their labels and splits, and its modality, anatomy, task and label names;
// no code in this module names a collection, modality or label itself.
//
// # Usage
//
//	items, err := data.Load("omnimedvqa_real.json", data.CheckImages())
//	if err != nil { … }
//	for _, it := range items {
//		want, _ := it.AnswerIndex()
//		got, ok := data.ExtractAnswer(output, it.Options())
//		correct := ok && got == want
//	}
//
// Subpackages: builder turns collections into benchmarks; eval runs an
// Answerer over a benchmark and computes accuracy with confidence intervals.
package data
