// Package eval runs a question answerer over an OmniMedVQA-format benchmark
// and measures accuracy.
//
// # Answerers
//
// An Answerer takes a batch of items and returns one Answer per item: the
// raw output text (parsed with data.ExtractAnswer: a letter in
// <answer>…</answer>, a bare or stated letter, or an option's text) and,
// optionally, per-option probabilities for option-scoring models (used when
// the text is empty). The model-backed Answerer belongs to the model
// packages; here are the scripted ones: Scripted (recorded outputs, e.g.
// from LoadAnswers), Random, Majority (most frequent correct answer text in
// a reference set) and Constant.
//
// # Scores
//
// Evaluate batches the items, shows an optional progress bar, and returns
// per-item Predictions and a Summary: accuracy overall and by modality,
// question type and dataset, each with a 95% Wilson interval. An output no
// option can be read from counts wrong and is counted in Unparsed; an item
// with no output at all is also counted in Missing.
//
// # Linear probe
//
// LinearProbe fits multinomial logistic regression (L-BFGS, L2 chosen by
// cross-validation on the training set, standardised features) to
// labelled feature vectors and reports validation accuracy against the
// majority class: how much label information frozen features carry.
//
// # Usage
//
//	res, err := eval.Evaluate(ctx, eval.Random{Seed: 1}, items, eval.Options{BatchSize: 32, Progress: os.Stderr})
//	fmt.Printf("%.1f%% [%.1f, %.1f]\n", 100*res.Summary.Overall.Accuracy,
//		100*res.Summary.Overall.Low, 100*res.Summary.Overall.High)
package eval
