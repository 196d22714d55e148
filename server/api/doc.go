// Package api holds the JSON wire types of the medgr2 REST server, shared
// by the server, the bench load generator, clients and tests.
//
// # Endpoints
//
//	POST   /v1/vqa               VQARequest        → VQAResponse
//	POST   /v1/generate          GenerateRequest   → GenerateResponse
//	POST   /v1/score             ScoreRequest      → ScoreResponse
//	POST   /v1/chat/completions  ChatCompletionRequest → ChatCompletion (or SSE ChatCompletionChunk)
//	POST   /v1/jobs              JSONL body or JobRequest → JobStatus
//	GET    /v1/jobs/{id}         → JobStatus
//	GET    /v1/jobs/{id}/results → JSONL of JobResult
//	DELETE /v1/jobs/{id}         → JobStatus
//	GET    /healthz, /readyz, /metrics
//
// Every error is an [ErrorResponse] with a stable machine code.
//
// Images travel as base64 strings, with or without a data URI prefix
// ("data:image/png;base64,…"); /v1/vqa also accepts multipart uploads.
//
// # Usage
//
//	req := api.VQARequest{Image: "data:image/png;base64,…", Question: "Which modality?",
//		Options: []string{"CT", "MRI", "X-ray", "Ultrasound"}, Mode: api.ModeFast}
//	body, _ := json.Marshal(req)
//	resp, _ := http.Post(url+"/v1/vqa", "application/json", bytes.NewReader(body))
package api
