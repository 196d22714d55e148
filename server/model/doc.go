// Package model defines the small interfaces through which the medgr2
// server calls models, one per role: [VQA] answers multiple-choice
// questions, [Generator] writes synthetic items, [Reward] scores samples
// and [Chat] generates free text for the OpenAI-compatible endpoint.
//
// Every method takes a whole batch: the server's dynamic batcher groups
// concurrent requests and calls the model from one goroutine, so an
// implementation never sees concurrent calls and may keep one ONNX Runtime
// session. The integrator writes adapters from the real model bundles
// (package models) to these interfaces; package server/fake holds
// deterministic fakes for tests and benchmarks.
//
// # Usage
//
//	var m model.VQA = fake.NewVQA(fake.Options{})
//	out, err := m.AnswerBatch(ctx, []model.VQAInput{{Image: img, Question: "Modality?",
//		Options: []string{"CT", "MRI"}}})
package model
