// Package generate is the token-level generation engine: it turns a model
// that yields next-token logits into finished completions.
//
// The engine knows nothing about images, tokenizers or ONNX files. A caller
// (the models package) prefills its prompts, with image features spliced in
// and the KV cache filled, and hands the engine the logits of each row's last
// prompt token together with a Session that advances every row by one token.
// The engine then samples, tracks stop conditions per row, records the
// log-probability of every chosen token (GRPO needs them) and stops when all
// rows are finished or have reached their token budget.
//
// # Sampling
//
// Each row has its own Options: greedy decoding when Temperature is 0,
// otherwise temperature scaling followed by top-k and top-p (nucleus)
// filtering and a draw from a per-row random source seeded by Options.Seed.
// Because every row owns its random source, a row gives the same tokens
// alone or inside a batch.
//
// # Log-probabilities
//
// Result.LogProbs[i] is log p(token i) under softmax(logits / T) (T = 1 for
// greedy decoding), before top-k and top-p truncation: the quantity a policy
// gradient uses.
//
// # Option scoring
//
// OptionProbs turns one row of logits into calibrated probabilities over a
// small set of answer tokens (the option letters), the fast path for
// multiple-choice answering.
//
// # Usage
//
//	first, sess := prefill(ctx, prompts) // the caller's model
//	results, err := generate.Run(ctx, sess, first, []generate.Options{
//		{MaxNewTokens: 64, Temperature: 0.7, TopP: 0.9, Seed: 1, StopTokens: []int{eos}},
//	})
package generate
