// Package fake provides deterministic models for the medgr2 server's
// tests and benchmarks. Each fake implements one interface of package
// server/model, derives its answers from a hash of the inputs (the same
// input always gives the same output, alone or inside a batch), and costs
// Options.BatchCost + n·Options.ItemCost of wall time per batch of n, so
// batching gains are measurable with realistic numbers.
//
// # Usage
//
//	m := fake.NewVQA(fake.Options{BatchCost: 20 * time.Millisecond, ItemCost: time.Millisecond})
//	out, err := m.AnswerBatch(ctx, inputs)
package fake
