// Package server is the medgr2 REST server: gin routes over a dynamic
// batcher per model role, a response cache and a job queue, with API keys,
// rate limits, Prometheus metrics, health and graceful drain.
//
// # Endpoints
//
// See package server/api for the wire types.
//
//	POST /v1/vqa               multiple-choice answer with per-option probabilities
//	POST /v1/generate          synthetic items (generator role)
//	POST /v1/score             reward scores for a batch of samples
//	POST /v1/chat/completions  OpenAI-compatible, image_url data URIs, SSE streaming
//	GET  /v1/models            loaded models, OpenAI list format
//	POST /v1/jobs, GET /v1/jobs/{id}, GET /v1/jobs/{id}/results, DELETE /v1/jobs/{id}
//	GET  /healthz, /readyz, /metrics
//
// # Models
//
// The server calls models through the interfaces of package server/model
// ([Models]); each loaded role gets a batch.Batcher whose goroutine is the
// only caller of the model. Images are decoded by Config.DecodeImage
// (default [PreprocessingDecoder]: PNG, JPEG, GIF, BMP, TIFF, WebP and
// DICOM with byte and pixel limits) in the request's goroutine, after the
// response cache was checked with the hash of the raw bytes. Package
// server/backend adapts real model bundles to server/model.
//
// # Shared state
//
// Config.Cache defaults to an in-process LRU. Config.Jobs defaults to a
// queue.Bolt in a temporary folder (jobs do not outlive the process);
// `medgr2 serve` opens a durable queue.Bolt in its --out folder, or, with
// --redis, cache.NewRedis and queue.NewRedis on one Redis to share
// responses and distribute jobs across replicas.
//
// # Errors
//
// Every error goes through one mapper: RequestError → 400, ImageError →
// 400, ErrImageTooLarge / ErrBodyTooLarge → 413, ErrUnauthorized → 401,
// ErrRateLimited and batch.ErrQueueFull → 429, ErrModelUnavailable,
// ErrNoRoute and a job of another key → 404, queue.ErrLost → 410,
// deadline → 504, client gone → 499, shutting down or the job store
// unreachable (queue.ErrUnavailable) → 503. 429 and 503 carry a
// Retry-After estimated from the waiting requests and job items and the
// models' throughput over the last 10 s. The body is an api.ErrorResponse
// with the request id; a 5xx body has a fixed message, and the error
// itself (which may name addresses, paths or model nodes) goes to the log
// under that id. /readyz answers 503 while the job store is unreachable.
//
// # Tenants
//
// A job belongs to the API key that submitted it; any other key gets 404
// for it. /readyz tells a caller without a key only up or down. Logs show
// an image as an HMAC of its hash under Config.LogKey.
//
// # Usage
//
//	s, err := server.New(server.Config{Batch: batch.Config{MaxBatch: 16}},
//		server.Models{VQA: vqaModel, Reward: rewardModel})
//	if err != nil { … }
//	err = s.Run(ctx, "127.0.0.1:8080", 30*time.Second) // until ctx ends
package server
