package api

import (
	"time"

	"github.com/medgr2/medgr2/data"
)

// MinOptions and MaxOptions bound the options of every multiple-choice
// field (VQA questions, generated and scored items). MaxOptions is
// data.MaxOptions, one option per letter of data.Letters: the bound the
// models answer within, so a request the API accepts never fails its
// model batch for its option count.
const (
	MinOptions = 2
	MaxOptions = data.MaxOptions
)

// Answer modes of /v1/vqa.
const (
	ModeFast   = "fast"   // scores option letters from one forward pass
	ModeReason = "reason" // generates <think>…</think> reasoning first
)

// Job kinds accepted by /v1/jobs.
const (
	JobKindScore = "score" // each line is a ScoreItem
	JobKindVQA   = "vqa"   // each line is a VQARequest
)

// Job states reported in JobStatus.State.
const (
	JobQueued   = "queued"
	JobRunning  = "running"
	JobDone     = "done"
	JobCanceled = "canceled"
)

// ModelRef names the model that produced a response.
type ModelRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Timing reports where a request spent its time, in milliseconds.
type Timing struct {
	DecodeMS     float64 `json:"decode_ms"`     // decoding the request's images
	PreprocessMS float64 `json:"preprocess_ms"` // resizing, normalising and patching them
	QueueMS      float64 `json:"queue_ms"`      // waiting in the batcher
	ModelMS      float64 `json:"model_ms"`      // model execution of its batch
	VisionMS     float64 `json:"vision_ms"`     // the vision encoder's part of ModelMS (VQA; 0 where not measured)
	TotalMS      float64 `json:"total_ms"`      // whole request inside the server
	BatchSize    int     `json:"batch_size"`    // requests in its batch
}

// VQARequest asks a multiple-choice question about one image.
type VQARequest struct {
	// Image is the image as base64 or a data URI (PNG, JPEG, DICOM).
	Image string `json:"image"`
	// Question is the question text; required.
	Question string `json:"question"`
	// Options are the answer choices, labelled A, B, … in order;
	// MinOptions to MaxOptions of them.
	Options []string `json:"options"`
	// Mode is ModeFast (default) or ModeReason.
	Mode string `json:"mode,omitempty"`
}

// VQAResponse is the answer to a VQARequest.
type VQAResponse struct {
	Answer        string             `json:"answer"`              // option letter
	AnswerText    string             `json:"answer_text"`         // the chosen option's text
	Probabilities map[string]float64 `json:"probabilities"`       // letter → probability
	Reasoning     string             `json:"reasoning,omitempty"` // set in ModeReason
	Model         ModelRef           `json:"model"`
	ImageSHA256   string             `json:"image_sha256"`
	Cached        bool               `json:"cached"`
	Timing        Timing             `json:"timing"`
}

// GenerateRequest asks the generator for synthetic multiple-choice items.
type GenerateRequest struct {
	Image    string            `json:"image"`               // base64 or data URI
	Metadata map[string]string `json:"metadata,omitempty"`  // e.g. modality, anatomy, label
	NumItems int               `json:"num_items,omitempty"` // 1 to 16; default 1
}

// GeneratedItem is one synthetic multiple-choice item.
type GeneratedItem struct {
	Question  string   `json:"question"`
	Options   []string `json:"options"`
	Answer    string   `json:"answer"` // option letter
	Reasoning string   `json:"reasoning"`
}

// GenerateResponse carries the generated items.
type GenerateResponse struct {
	Items       []GeneratedItem `json:"items"`
	Model       ModelRef        `json:"model"`
	ImageSHA256 string          `json:"image_sha256"`
	Timing      Timing          `json:"timing"`
}

// ScoreItem is one sample for the reward model.
type ScoreItem struct {
	Image     string   `json:"image"` // base64 or data URI
	Question  string   `json:"question"`
	Options   []string `json:"options"`
	Answer    string   `json:"answer"` // option letter
	Reasoning string   `json:"reasoning,omitempty"`
}

// ScoreRequest is a batch of samples to score; 1 to 256 items.
type ScoreRequest struct {
	Items []ScoreItem `json:"items"`
}

// ScoreResponse gives one reward score per item, in order, on the paper's
// scale (about −6 irrelevant … 10 original).
type ScoreResponse struct {
	Scores []float64 `json:"scores"`
	Model  ModelRef  `json:"model"`
	Timing Timing    `json:"timing"`
}

// JobRequest submits a job as JSON. Items may instead be sent as a JSONL
// body with Content-Type application/x-ndjson and ?kind=score|vqa.
type JobRequest struct {
	Kind string `json:"kind"` // JobKindScore or JobKindVQA
	// Path names a JSONL file under the server's jobs directory.
	Path string `json:"path"`
}

// JobError describes one failed job item.
type JobError struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// JobStatus reports a job's progress.
type JobStatus struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"`
	State     string     `json:"state"`
	Total     int        `json:"total"`
	Done      int        `json:"done"`   // items with a result (succeeded or failed)
	Failed    int        `json:"failed"` // items whose result is an error
	Errors    []JobError `json:"errors,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// JobResult is one line of GET /v1/jobs/{id}/results.
type JobResult struct {
	Index  int    `json:"index"`
	Result any    `json:"result,omitempty"` // VQAResponse or ScoreResult
	Error  string `json:"error,omitempty"`
}

// ScoreResult is the result of one scoring job item.
type ScoreResult struct {
	Score float64  `json:"score"`
	Model ModelRef `json:"model"`
}

// ErrorResponse is the body of every 4xx and 5xx answer.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody says what was wrong.
type ErrorBody struct {
	Code    string `json:"code"`            // stable machine code, e.g. "invalid_request"
	Message string `json:"message"`         // human readable
	Field   string `json:"field,omitempty"` // offending field, when there is one
	// Type mirrors Code for OpenAI clients, which read error.type.
	Type string `json:"type,omitempty"`
	// RequestID names the request in the server log (also the
	// X-Request-Id header); a 5xx body's details are logged under it.
	RequestID string `json:"request_id,omitempty"`
}

// Error codes used in ErrorBody.Code.
const (
	CodeInvalidRequest   = "invalid_request"
	CodeInvalidImage     = "invalid_image"
	CodeImageTooLarge    = "image_too_large"
	CodeBodyTooLarge     = "body_too_large"
	CodeUnauthorized     = "unauthorized"
	CodeRateLimited      = "rate_limited"
	CodeQueueFull        = "queue_full"
	CodeModelUnavailable = "model_unavailable"
	CodeNotFound         = "not_found"
	CodeJobLost          = "job_lost" // 410: the job store no longer holds a job it accepted
	CodeTimeout          = "timeout"
	CodeCanceled         = "canceled"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
)
