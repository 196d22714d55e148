package model

import (
	"context"
	"image"
	"time"

	"github.com/medgr2/medgr2/preprocessing"
)

// Info describes a loaded model.
type Info struct {
	Name    string // model name, e.g. "medgr2-vqa-2b"
	Version string // version string; part of every cache key
	Role    string // "vqa", "generator", "reward" or "chat"
}

// Image is a request image as the server hands it to a model: decoded,
// and processed for the model when the server's decoder could do that in
// the request's goroutine (see backend.Models.DecodeImage).
type Image struct {
	// Decoded is the decoded image; nil when the decoder made Pixels (the
	// full-size image is dropped once processed) or took them from its
	// cache.
	Decoded image.Image
	// Pixels is the model input made from Decoded (resized, normalised,
	// patched), or nil when the decoder left that to the model's batch.
	Pixels *preprocessing.Pixels
	// DecodeTime and ProcessTime are what making the image cost in the
	// request's goroutine: decoding its bytes, and running the image
	// processor (resize, normalise, patchify; 0 when the batch does it or
	// the pixels came from a cache). They feed the response's timing.
	DecodeTime, ProcessTime time.Duration
}

// VQAInput is one multiple-choice question about an image.
type VQAInput struct {
	Image     Image    // the request image
	ImageHash string   // hex SHA-256 of the image bytes
	Question  string   // question text
	Options   []string // choices, labelled A, B, … in order
	Reason    bool     // generate reasoning before answering
	// PromptIDs are the prompt's token ids as the model's PromptIDs
	// returned them, set by the server when the model is a PromptCounter
	// (nil: not counted). Their count is the prompt's length, by which the
	// server batches requests and meters padding; the same model takes
	// them back so it does not encode the prompt again.
	PromptIDs []int
}

// VQAOutput is the model's answer to one VQAInput.
type VQAOutput struct {
	Answer    int       // index into Options
	Probs     []float64 // one probability per option, summing to 1
	Reasoning string    // set when Reason was asked
	// VisionTime is the vision encoder's part of the model run of the
	// output's batch (the same for every output of one batch); 0 when the
	// model does not tell.
	VisionTime time.Duration
}

// PromptCounter is implemented by a VQA model that can tell, before
// running, how many tokens a request's prompt takes (image tokens
// included); the server then batches requests of similar length together
// so a batch pads little.
type PromptCounter interface {
	// PromptIDs returns the prompt of in as token ids; their count is
	// its length.
	PromptIDs(in VQAInput) ([]int, error)
}

// VQA answers batches of multiple-choice questions.
type VQA interface {
	// AnswerBatch returns one output per input, in order.
	AnswerBatch(ctx context.Context, in []VQAInput) ([]VQAOutput, error)
	// Info names the model.
	Info() Info
}

// GenerateInput asks for synthetic items about one image.
type GenerateInput struct {
	Image     Image // the request image
	ImageHash string
	Metadata  map[string]string // e.g. modality, anatomy, label
	NumItems  int               // at least 1
}

// Item is one synthetic multiple-choice item.
type Item struct {
	Question  string
	Options   []string
	Answer    int // index into Options
	Reasoning string
}

// Generator writes synthetic multiple-choice items (the generator role).
type Generator interface {
	// GenerateBatch returns, per input, NumItems items.
	GenerateBatch(ctx context.Context, in []GenerateInput) ([][]Item, error)
	Info() Info
}

// ScoreInput is one sample for the reward model.
type ScoreInput struct {
	Image     Image // the request image
	ImageHash string
	Question  string
	Options   []string
	Answer    int // index into Options
	Reasoning string
}

// Reward scores samples (the reward role) on the paper's scale.
type Reward interface {
	// ScoreBatch returns one score per input, in order.
	ScoreBatch(ctx context.Context, in []ScoreInput) ([]float64, error)
	Info() Info
}

// ChatMessage is one turn of a conversation.
type ChatMessage struct {
	Role   string  // "system", "user" or "assistant"
	Text   string  // the text parts, joined
	Images []Image // images in the message, in order
}

// ChatInput is one conversation to continue.
type ChatInput struct {
	Messages    []ChatMessage
	MaxTokens   int      // upper bound on generated tokens
	Temperature float64  // 0 means greedy
	TopP        float64  // nucleus sampling mass; 0 or 1 keeps all tokens
	Stop        []string // generation ends before the first of these; not part of Text
	Seed        uint64   // sampling seed; the same seed gives the same text
	// Emit, if not nil, receives each generated piece of text as soon as it
	// is decoded (for streaming); it must not block for long.
	Emit func(delta string)
}

// ChatOutput is the reply to one ChatInput.
type ChatOutput struct {
	Text             string
	FinishReason     string // "stop" or "length"
	PromptTokens     int
	CompletionTokens int
}

// Chat generates free text; it backs /v1/chat/completions.
type Chat interface {
	// ChatBatch continues every conversation and returns one output each.
	ChatBatch(ctx context.Context, in []ChatInput) ([]ChatOutput, error)
	Info() Info
}
