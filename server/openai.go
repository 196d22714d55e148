package server

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/model"
)

const (
	defaultMaxTokens = 256
	maxMaxTokens     = 4096
	maxMessages      = 64
	maxStop          = 4 // stop strings per request, as OpenAI allows
)

// chatInput validates an OpenAI request and decodes its images.
func (s *Server) chatInput(req api.ChatCompletionRequest) (model.ChatInput, error) {
	in := model.ChatInput{MaxTokens: req.MaxTokens}
	field := "max_tokens"
	if req.MaxCompletionTokens != 0 {
		if req.MaxTokens != 0 && req.MaxTokens != req.MaxCompletionTokens {
			return in, badField("max_completion_tokens", "differs from max_tokens (%d vs %d); give one of them",
				req.MaxCompletionTokens, req.MaxTokens)
		}
		in.MaxTokens, field = req.MaxCompletionTokens, "max_completion_tokens"
	}
	if in.MaxTokens == 0 {
		in.MaxTokens = defaultMaxTokens
	}
	if in.MaxTokens < 0 || in.MaxTokens > maxMaxTokens {
		return in, badField(field, "must be 1 to %d, got %d", maxMaxTokens, in.MaxTokens)
	}
	if req.StreamOptions != nil && !req.Stream {
		return in, badField("stream_options", "only allowed with stream: true")
	}
	if req.Temperature != nil {
		if *req.Temperature < 0 || *req.Temperature > 2 {
			return in, badField("temperature", "must be 0 to 2, got %g", *req.Temperature)
		}
		in.Temperature = *req.Temperature
	}
	if err := chatSampling(req, &in); err != nil {
		return in, err
	}
	if len(req.Messages) == 0 || len(req.Messages) > maxMessages {
		return in, badField("messages", "need 1 to %d messages, got %d", maxMessages, len(req.Messages))
	}
	images := 0
	for _, m := range req.Messages {
		for _, p := range m.Content.Parts {
			if p.Type == "image_url" {
				images++
			}
		}
	}
	if images > s.cfg.MaxRequestImages {
		return in, badField("messages", "%d images, over the limit of %d per request", images, s.cfg.MaxRequestImages)
	}
	for i, m := range req.Messages {
		msg, err := s.chatMessage(i, m)
		if err != nil {
			return in, err
		}
		in.Messages = append(in.Messages, msg)
	}
	return in, nil
}

// chatSampling validates and copies top_p, stop and seed.
func chatSampling(req api.ChatCompletionRequest, in *model.ChatInput) error {
	if req.TopP != nil {
		if *req.TopP <= 0 || *req.TopP > 1 {
			return badField("top_p", "must be in (0, 1], got %g", *req.TopP)
		}
		in.TopP = *req.TopP
	}
	if len(req.Stop) > maxStop {
		return badField("stop", "at most %d stop strings, got %d", maxStop, len(req.Stop))
	}
	for i, st := range req.Stop {
		if st == "" || len(st) > maxTextLen {
			return badField(fmt.Sprintf("stop[%d]", i), "must be non-empty and at most %d bytes", maxTextLen)
		}
	}
	in.Stop = req.Stop
	if req.Seed != nil {
		in.Seed = uint64(*req.Seed)
	}
	return nil
}

func (s *Server) chatMessage(i int, m api.ChatMessage) (model.ChatMessage, error) {
	field := fmt.Sprintf("messages[%d]", i)
	switch m.Role {
	case "system", "user", "assistant":
	default:
		return model.ChatMessage{}, badField(field+".role", "must be system, user or assistant, got %q", m.Role)
	}
	msg := model.ChatMessage{Role: m.Role}
	var text []string
	for j, p := range m.Content.Parts {
		pf := fmt.Sprintf("%s.content[%d]", field, j)
		switch p.Type {
		case "text":
			text = append(text, p.Text)
		case "image_url":
			if p.ImageURL == nil || !strings.HasPrefix(p.ImageURL.URL, "data:") {
				return msg, badField(pf+".image_url.url", "must be a data URI (data:image/png;base64,…); remote URLs are not fetched")
			}
			img, err := s.imageFromField(pf+".image_url.url", p.ImageURL.URL)
			if err != nil {
				return msg, err
			}
			msg.Images = append(msg.Images, img.img)
		default:
			return msg, badField(pf+".type", "must be text or image_url, got %q", p.Type)
		}
	}
	msg.Text = strings.Join(text, "\n")
	if err := checkControl(field+".content", msg.Text); err != nil {
		return msg, err
	}
	if msg.Text == "" && len(msg.Images) == 0 {
		return msg, badField(field+".content", "required")
	}
	return msg, nil
}

func completionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "chatcmpl-" + hex.EncodeToString(b[:])
}

func (s *Server) handleChat(c *gin.Context) {
	var req api.ChatCompletionRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if s.chat == nil {
		s.fail(c, fmt.Errorf("chat: %w", ErrModelUnavailable))
		return
	}
	in, err := s.chatInput(req)
	if err != nil {
		s.fail(c, err)
		return
	}
	name := req.Model
	if name == "" {
		name = s.models.Chat.Info().Name
	}
	if req.Stream {
		s.streamChat(c, in, name, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
		return
	}
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	out, _, err := s.chat.Submit(ctx, in, chatKey(in))
	if err != nil {
		s.fail(c, err)
		return
	}
	s.met.tokens.Add(float64(out.CompletionTokens))
	finish := out.FinishReason
	c.JSON(http.StatusOK, api.ChatCompletion{ID: completionID(), Object: "chat.completion", Created: time.Now().Unix(), Model: name,
		Choices: []api.ChatChoice{{Message: &api.ReplyMessage{Role: "assistant", Content: out.Text}, FinishReason: &finish}},
		Usage:   api.Usage{PromptTokens: out.PromptTokens, CompletionTokens: out.CompletionTokens, TotalTokens: out.PromptTokens + out.CompletionTokens}})
}

func chatKey(in model.ChatInput) int {
	n := 0
	for _, m := range in.Messages {
		n += len(m.Text)/256 + 4*len(m.Images)
	}
	return n
}

// chatDone carries the end of a streamed completion.
type chatDone struct {
	out model.ChatOutput
	err error
}

// streamChat answers with server-sent events: a role chunk, one chunk per
// emitted piece, a finish chunk, with usage a chunk of token counts, then
// [DONE]. Errors after the first byte are sent as an error event.
func (s *Server) streamChat(c *gin.Context, in model.ChatInput, name string, usage bool) {
	ctx, cancel := s.requestCtx(c)
	defer cancel()
	deltas := make(chan string, in.MaxTokens+16)
	in.Emit = func(d string) {
		select {
		case deltas <- d:
		case <-ctx.Done():
		}
	}
	done := make(chan chatDone, 1)
	go func() {
		out, _, err := s.chat.Submit(ctx, in, chatKey(in))
		done <- chatDone{out, err}
	}()
	id, created := completionID(), time.Now().Unix()
	chunk := func(d *api.ReplyMessage, finish *string) api.ChatCompletionChunk {
		return api.ChatCompletionChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: name,
			Choices: []api.ChatChoice{{Delta: d, FinishReason: finish}}}
	}
	started := false
	send := func(v any) {
		if !started {
			c.Header("Content-Type", "text/event-stream")
			c.Header("Cache-Control", "no-cache")
			c.Status(http.StatusOK)
			started = true
		}
		b, _ := json.Marshal(v)
		fmt.Fprintf(c.Writer, "data: %s\n\n", b)
		c.Writer.Flush()
	}
	for {
		select {
		case d := <-deltas:
			if !started {
				send(chunk(&api.ReplyMessage{Role: "assistant"}, nil))
			}
			send(chunk(&api.ReplyMessage{Content: d}, nil))
		case r := <-done:
			s.finishStream(c, r, deltas, send, chunk, started)
			if r.err == nil && usage {
				u := chunk(nil, nil)
				u.Choices = []api.ChatChoice{}
				u.Usage = &api.Usage{PromptTokens: r.out.PromptTokens, CompletionTokens: r.out.CompletionTokens,
					TotalTokens: r.out.PromptTokens + r.out.CompletionTokens}
				send(u)
			}
			if r.err == nil {
				fmt.Fprint(c.Writer, "data: [DONE]\n\n")
				c.Writer.Flush()
			}
			return
		}
	}
}

// finishStream flushes remaining deltas and ends the stream.
func (s *Server) finishStream(c *gin.Context, r chatDone, deltas chan string, send func(any),
	chunk func(*api.ReplyMessage, *string) api.ChatCompletionChunk, started bool) {
	if r.err != nil && !started {
		s.fail(c, r.err)
		return
	}
	if r.err != nil {
		status, body := mapError(r.err)
		body.RequestID = c.GetString(ctxRequestID)
		if status >= 500 {
			s.log.Error("stream failed", "request_id", body.RequestID, "status", status, "err", r.err)
		}
		send(api.ErrorResponse{Error: body})
		return
	}
	if !started {
		send(chunk(&api.ReplyMessage{Role: "assistant"}, nil))
	}
	for len(deltas) > 0 {
		send(chunk(&api.ReplyMessage{Content: <-deltas}, nil))
	}
	s.met.tokens.Add(float64(r.out.CompletionTokens))
	finish := r.out.FinishReason
	send(chunk(&api.ReplyMessage{}, &finish))
}

// handleModels answers GET /v1/models: each loaded model once, by name.
func (s *Server) handleModels(c *gin.Context) {
	list := api.ModelList{Object: "list", Data: []api.ModelCard{}}
	seen := map[string]bool{}
	for _, m := range []interface{ Info() model.Info }{s.models.Chat, s.models.VQA, s.models.Generator, s.models.Reward} {
		if m == nil {
			continue
		}
		if name := m.Info().Name; !seen[name] {
			seen[name] = true
			list.Data = append(list.Data, api.ModelCard{ID: name, Object: "model", Created: s.started.Unix(), OwnedBy: "medgr2"})
		}
	}
	c.JSON(http.StatusOK, list)
}
