package api

import (
	"encoding/json"
	"errors"
)

// ChatCompletionRequest is the OpenAI chat completions request subset the
// server understands.
type ChatCompletionRequest struct {
	Model     string        `json:"model"`
	Messages  []ChatMessage `json:"messages"`
	Stream    bool          `json:"stream,omitempty"`
	MaxTokens int           `json:"max_tokens,omitempty"` // default 256
	// MaxCompletionTokens is OpenAI's newer name for MaxTokens; give one
	// of them, or both with the same value.
	MaxCompletionTokens int `json:"max_completion_tokens,omitempty"`
	// StreamOptions tunes a streaming response (only with Stream).
	StreamOptions *StreamOptions `json:"stream_options,omitempty"`
	Temperature   *float64       `json:"temperature,omitempty"`
	TopP          *float64       `json:"top_p,omitempty"` // 0 < top_p ≤ 1
	Stop          StopList       `json:"stop,omitempty"`  // a string or up to 4 strings
	Seed          *int64         `json:"seed,omitempty"`  // sampling seed
}

// StreamOptions is OpenAI's "stream_options".
type StreamOptions struct {
	// IncludeUsage adds a last chunk, before [DONE], whose choices are
	// empty and whose usage counts the tokens.
	IncludeUsage bool `json:"include_usage,omitempty"`
}

// StopList is OpenAI's "stop": a single string or an array of strings.
type StopList []string

// UnmarshalJSON accepts a string, an array of strings or null.
func (l *StopList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = StopList{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("api: stop must be a string or an array of strings")
	}
	*l = list
	return nil
}

// ChatMessage is one message; Content is a string or a list of parts.
type ChatMessage struct {
	Role    string      `json:"role"`
	Content ChatContent `json:"content"`
}

// ChatContent holds message content, decoded from either a JSON string or
// an array of ContentPart.
type ChatContent struct {
	Parts []ContentPart // a plain string becomes one "text" part
}

// ContentPart is a text or image_url part.
type ContentPart struct {
	Type     string    `json:"type"` // "text" or "image_url"
	Text     string    `json:"text,omitempty"`
	ImageURL *ImageURL `json:"image_url,omitempty"`
}

// ImageURL carries an image as a data URI.
type ImageURL struct {
	URL string `json:"url"`
}

// UnmarshalJSON accepts a string or an array of parts.
func (c *ChatContent) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		c.Parts = []ContentPart{{Type: "text", Text: s}}
		return nil
	}
	var parts []ContentPart
	if err := json.Unmarshal(b, &parts); err != nil {
		return errors.New("api: content must be a string or an array of parts")
	}
	c.Parts = parts
	return nil
}

// MarshalJSON writes a single text part as a string, else the parts.
func (c ChatContent) MarshalJSON() ([]byte, error) {
	if len(c.Parts) == 1 && c.Parts[0].Type == "text" {
		return json.Marshal(c.Parts[0].Text)
	}
	return json.Marshal(c.Parts)
}

// ChatCompletion is the non-streaming response.
type ChatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"` // "chat.completion"
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []ChatChoice `json:"choices"`
	Usage   Usage        `json:"usage"`
}

// ChatChoice is one completion choice.
type ChatChoice struct {
	Index        int           `json:"index"`
	Message      *ReplyMessage `json:"message,omitempty"`
	Delta        *ReplyMessage `json:"delta,omitempty"`
	FinishReason *string       `json:"finish_reason"`
}

// ReplyMessage is the assistant's message or a streamed delta.
type ReplyMessage struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content"`
}

// Usage counts tokens.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// ChatCompletionChunk is one server-sent event of a streaming response.
type ChatCompletionChunk struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"` // "chat.completion.chunk"
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []ChatChoice `json:"choices"`
	// Usage is set only on the last chunk of a stream asked for with
	// stream_options.include_usage (whose Choices are empty).
	Usage *Usage `json:"usage,omitempty"`
}

// ModelList is the body of GET /v1/models, in OpenAI's list format.
type ModelList struct {
	Object string      `json:"object"` // "list"
	Data   []ModelCard `json:"data"`
}

// ModelCard describes one served model in a ModelList.
type ModelCard struct {
	ID      string `json:"id"`       // the name to pass as "model"
	Object  string `json:"object"`   // "model"
	Created int64  `json:"created"`  // Unix seconds the server loaded it
	OwnedBy string `json:"owned_by"` // "medgr2"
}
