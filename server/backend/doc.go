// Package backend adapts model bundles (package models) to the server's
// model interfaces (package server/model), so `medgr2 serve` runs the real
// VQA, generator and reward models behind the REST API.
//
// # Roles
//
//   - VQA (model.VQA): fast mode scores the option letters from one
//     forward pass (models.AnswerFast); reason mode generates
//     "<think>…</think><answer>X</answer>" and then scores the letters
//     after the reasoning, so both modes return probabilities summing to 1.
//   - Generator (model.Generator): one generated row per requested item
//     (models.GenerateSamples, the path the pipeline uses); completions that do not parse are dropped.
//   - Reward (model.Reward): one batched forward pass (models.Score).
//   - Chat (model.Chat): OpenAI chat on the VQA bundle, rendered in the
//     Qwen2-VL chat template, with temperature, top_p, seed, stop strings
//     and token streaming (models.GenerateStream).
//
// A batch in is a batch out: the server's batcher hands each adapter a
// batch and the adapter runs it as one model batch.
//
// # Images
//
// The server decodes images (server.PreprocessingDecoder: PNG, JPEG, GIF,
// BMP, TIFF, WebP, DICOM). Models.DecodeImage wraps that decoder to also
// run the bundles' image processor in the request's goroutine, so the
// batch goroutine only runs the model and an image the processor refuses
// fails its own request only. It keeps an LRU of the processed pixels,
// keyed by the SHA-256 of the image bytes and bounded in bytes
// (Options.PixelCacheBytes), so an image asked about again is neither
// decoded nor resized again.
//
// # Concurrency
//
// Every adapter is safe for concurrent use: the server may run
// Options.Workers batches at once on one session per bundle, each session
// with Options.Threads intra-op threads (by default cores/Workers). The
// VQA adapter encodes each request's prompt when the server counts it
// (VQA.PromptIDs), so the server batches prompts of similar length
// together, and answers from those ids without encoding them again.
//
// # Memory
//
// ONNX Runtime's CPU arena keeps the largest memory a batch ever took for
// the life of its session. With Options.IdleRelease (default
// DefaultIdleRelease) a bundle idle that long, with resident memory
// ReleaseGrowth over its level after loading, is opened afresh and
// swapped in while no call holds it; the old sessions are closed and free
// Go and C heap memory goes back to the OS. A processed image drops its
// full-size decode, so a queued request holds its images at the model's
// size.
//
// # Errors
//
// Input the model cannot take (models.ErrBadRequest, ErrImageTokens,
// ErrLetterToken) becomes a *server.RequestError, and images the processor
// refuses a *server.ImageError: both answer 400. The models error stays in
// the chain for errors.Is.
//
// # Usage
//
//	m, err := backend.Open(ctx, backend.Options{VQA: "models/default/vqa",
//		Reward: "models/default/reward", Device: runtime.CPU})
//	if err != nil { … }
//	defer m.Close()
//	s, err := server.New(server.Config{DecodeImage: m.DecodeImage(nil)}, m.Server())
package backend
