package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/ardanlabs/jinja"
)

// Types of a ChatPart, as Hugging Face writes them in a message's content
// list.
const (
	ChatText  = "text"
	ChatImage = "image"
)

// ChatMessage is one turn of a conversation in the Hugging Face form that
// chat templates read: a role and a content that is either a string (Parts
// empty) or a list of parts (Parts set, Text empty).
//
// In JSON it is {"role": …, "content": "…"} or {"role": …, "content":
// [{"type": "image"}, {"type": "text", "text": "…"}]}.
type ChatMessage struct {
	// Role is "system", "user", "assistant" or any role the template knows;
	// required.
	Role string
	// Text is the content when the message is plain text.
	Text string
	// Parts is the content when the message is a list of text and image
	// items; a template sees content as a list exactly when Parts is not
	// empty.
	Parts []ChatPart
}

// ChatPart is one item of a message's content list.
type ChatPart struct {
	// Type is ChatText or ChatImage.
	Type string `json:"type"`
	// Text is the text of a ChatText part; empty for an image.
	Text string `json:"text,omitempty"`
}

// messageJSON is a ChatMessage as Hugging Face writes it.
type messageJSON struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// MarshalJSON writes m in the Hugging Face form.
func (m ChatMessage) MarshalJSON() ([]byte, error) {
	var content any = m.Text
	if len(m.Parts) > 0 {
		content = m.Parts
	}
	return json.Marshal(struct {
		Role    string `json:"role"`
		Content any    `json:"content"`
	}{m.Role, content})
}

// UnmarshalJSON reads the Hugging Face form; content must be a string or a
// list of {"type", "text"} parts. Errors wrap ErrBadPrompt.
func (m *ChatMessage) UnmarshalJSON(data []byte) error {
	var raw messageJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("%w: chat message: %v", ErrBadPrompt, err)
	}
	*m = ChatMessage{Role: raw.Role}
	c := bytes.TrimSpace(raw.Content)
	switch {
	case len(c) == 0 || bytes.Equal(c, []byte("null")):
		return fmt.Errorf("%w: chat message %q has no content", ErrBadPrompt, raw.Role)
	case c[0] == '"':
		if err := json.Unmarshal(c, &m.Text); err != nil {
			return fmt.Errorf("%w: chat message %q content: %v", ErrBadPrompt, raw.Role, err)
		}
	default:
		dec := json.NewDecoder(bytes.NewReader(c))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m.Parts); err != nil {
			return fmt.Errorf("%w: chat message %q content (want a string or a list of {type, text}): %v", ErrBadPrompt, raw.Role, err)
		}
	}
	return nil
}

// validate checks what every template relies on.
func (m ChatMessage) validate(i int) error {
	if m.Role == "" {
		return fmt.Errorf("%w: message %d has no role", ErrBadPrompt, i)
	}
	if len(m.Parts) > 0 && m.Text != "" {
		return fmt.Errorf("%w: message %d has both Text and Parts", ErrBadPrompt, i)
	}
	for j, p := range m.Parts {
		switch p.Type {
		case ChatText:
		case ChatImage:
			if p.Text != "" {
				return fmt.Errorf("%w: message %d part %d: an image part has text", ErrBadPrompt, i, j)
			}
		default:
			return fmt.Errorf("%w: message %d part %d: type %q (want %q or %q)", ErrBadPrompt, i, j, p.Type, ChatText, ChatImage)
		}
	}
	return nil
}

// value is m as the template sees it, keys in Hugging Face's order.
func (m ChatMessage) value() jinja.Value {
	v := jinja.NewDict()
	d := v.AsDict()
	d.Set("role", jinja.NewString(m.Role))
	if len(m.Parts) == 0 {
		d.Set("content", jinja.NewString(m.Text))
		return v
	}
	parts := make([]jinja.Value, len(m.Parts))
	for i, p := range m.Parts {
		pv := jinja.NewDict()
		pv.AsDict().Set("type", jinja.NewString(p.Type))
		if p.Type == ChatText {
			pv.AsDict().Set("text", jinja.NewString(p.Text))
		}
		parts[i] = pv
	}
	d.Set("content", jinja.NewList(parts))
	return v
}

// texts calls f with every text m carries.
func (m ChatMessage) texts(f func(string) error) error {
	if err := f(m.Text); err != nil {
		return err
	}
	for _, p := range m.Parts {
		if err := f(p.Text); err != nil {
			return err
		}
	}
	return nil
}
