// Package builder turns labelled medical image collections into an
// OmniMedVQA-style multiple-choice benchmark, the way OmniMedVQA itself was
// made from labelled image sets.
//
// # What it writes
//
// Build reads every collection (collection.json + labels.jsonl, see package
// data) and a real OmniMedVQA QA file (the reference), and writes to
// Config.OutDir:
//
//   - images/<collection>/<image>.png: each source image resized to
//     ImageSize×ImageSize (default 56), gray when the collection is;
//   - all.jsonl, train.jsonl, validation.jsonl, test.jsonl: the items,
//     split by image (an image's questions all land in one split; a
//     collection's own split field is kept, other images are split by a
//     seeded hash);
//   - xmod_train.jsonl, xmod_validation.jsonl, xmod_test.jsonl: the
//     cross-modality split, where the held-out modalities appear only in
//     xmod_test;
//   - manifest.json: seed, sizes, sources, licences and the dataset card.
//
// # Questions
//
// Per image: modality recognition (the correct name and the distractors are
// real OmniMedVQA modality answers, one per other modality), anatomy
// identification (the collection's anatomy against other collections'
// anatomy and real anatomy answers of other modalities), and one question
// of the collection's task type per label: disease diagnosis or lesion
// grading for class labels (the other classes, then real findings of other
// modalities), other biological attributes for attribute labels (value
// bins). Phrasings are real OmniMedVQA questions of the same type that fit
// the image's modality (no yes/no or either/or questions, no word that
// names another modality or is used by fewer than three modalities);
// built-in phrasings are a fallback, and attribute questions are phrased
// from the attribute's description because OmniMedVQA has none to borrow.
// Distractors that share a word with the correct answer are dropped, so a
// synonym with no shared word (e.g. "lungs" for "chest") can still slip in;
// report it and tighten keepApart if it matters.
//
// Answer letters are dealt by block randomisation within each split, so
// every letter is correct equally often. The whole build is a function of
// the inputs and Config.Seed: the same seed gives the same bytes.
//
// # Usage
//
//	m, err := builder.Build(ctx, builder.Config{
//		Collections: dirs,
//		Reference:   "../shared/data/omnimedvqa-text/omnimedvqa_text_sample.json",
//		OutDir:      "out/benchmark",
//		ImageSize:   56,
//		Seed:        1,
//	})
package builder
