package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/ardanlabs/jinja"
)

// ErrChatTemplate reports a tokenizer_config.json without a usable
// chat_template (absent, empty, or a list with no "default").
var ErrChatTemplate = errors.New("tokenizer: no usable chat template")

// ChatTemplateError names the file whose chat template failed to load or
// render.
type ChatTemplateError struct {
	File string // the tokenizer_config.json path, or the name given to ParseChatTemplate
	Err  error  // wraps ErrChatTemplate, ErrFormat, ErrUnsupported or ErrBadPrompt
}

// Error implements error.
func (e *ChatTemplateError) Error() string {
	return fmt.Sprintf("tokenizer: chat template of %s: %v", e.File, e.Err)
}

// Unwrap returns the underlying error.
func (e *ChatTemplateError) Unwrap() error { return e.Err }

// chatSpecialTokens are the tokenizer_config.json entries that
// transformers.js passes to a chat template as variables of the same name
// (its SPECIAL_TOKEN_ATTRIBUTES), when set.
var chatSpecialTokens = []string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}

// ChatTemplate is a Hugging Face chat template (Jinja) compiled from a
// tokenizer_config.json. It renders a conversation exactly as
// transformers.js's apply_chat_template does, with these variables:
// messages, add_generation_prompt, tools and documents (both none), and
// each of bos_token, eos_token, unk_token, sep_token, pad_token, cls_token
// and mask_token that the config sets. It is safe for concurrent use.
//
// Templates run on github.com/ardanlabs/jinja, which applies Hugging Face's
// trim_blocks and lstrip_blocks; a construct that engine does not support
// ({% include %}, {% with %}, an unknown filter …) is an error wrapping
// ErrUnsupported, at load time when the parser sees it, else at render time.
type ChatTemplate struct {
	file   string            // where the template came from, for errors
	source string            // the template text as written
	tmpl   *jinja.Template   // compiled once
	tokens map[string]string // special-token variables
}

// LoadChatTemplate reads the chat_template of a tokenizer_config.json. The
// field may be a string or a list of {"name", "template"}, of which the one
// named "default" is used (as transformers.js does without tools). Errors
// are *ChatTemplateError naming path.
func LoadChatTemplate(path string) (*ChatTemplate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ChatTemplateError{File: path, Err: err}
	}
	return ParseChatTemplate(path, data)
}

// ParseChatTemplate is LoadChatTemplate for the contents of a
// tokenizer_config.json; name identifies it in errors.
func ParseChatTemplate(name string, tokenizerConfig []byte) (*ChatTemplate, error) {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(tokenizerConfig, &cfg); err != nil {
		return nil, &ChatTemplateError{File: name, Err: fmt.Errorf("%w: %v", ErrFormat, err)}
	}
	source, err := pickTemplate(cfg["chat_template"])
	if err != nil {
		return nil, &ChatTemplateError{File: name, Err: err}
	}
	tokens := map[string]string{}
	for _, key := range chatSpecialTokens {
		tok, err := configToken(cfg[key])
		if err != nil {
			return nil, &ChatTemplateError{File: name, Err: fmt.Errorf("%w: %s: %v", ErrFormat, key, err)}
		}
		if tok != "" {
			tokens[key] = tok
		}
	}
	return compileChatTemplate(name, source, tokens)
}

// CompileChatTemplate compiles a chat template given as Jinja text (a
// chat_template.jinja file, say) with the special-token variables tokens
// ("eos_token": "<|im_end|>" …); name identifies it in errors.
func CompileChatTemplate(name, source string, tokens map[string]string) (*ChatTemplate, error) {
	copied := make(map[string]string, len(tokens))
	for k, v := range tokens {
		copied[k] = v
	}
	return compileChatTemplate(name, source, copied)
}

func compileChatTemplate(name, source string, tokens map[string]string) (c *ChatTemplate, err error) {
	if strings.TrimSpace(source) == "" {
		return nil, &ChatTemplateError{File: name, Err: fmt.Errorf("%w: chat_template is empty", ErrChatTemplate)}
	}
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, &ChatTemplateError{File: name, Err: fmt.Errorf("%w: template engine failed: %v", ErrUnsupported, r)}
		}
	}()
	// Jinja drops a single trailing newline of the template
	// (keep_trailing_newline=False), as @huggingface/jinja does.
	tmpl, err := jinja.Compile(strings.TrimSuffix(source, "\n"))
	if err != nil {
		return nil, &ChatTemplateError{File: name, Err: fmt.Errorf("%w: %v", ErrUnsupported, err)}
	}
	return &ChatTemplate{file: name, source: source, tmpl: tmpl, tokens: tokens}, nil
}

// pickTemplate returns the template text of a chat_template field.
func pickTemplate(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", fmt.Errorf("%w: chat_template is missing", ErrChatTemplate)
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%w: chat_template: %v", ErrFormat, err)
		}
		return s, nil
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", fmt.Errorf("%w: chat_template (want a string or a list of {name, template}): %v", ErrFormat, err)
	}
	names := make([]string, 0, len(list))
	for _, t := range list {
		if t.Name == "default" {
			return t.Template, nil
		}
		names = append(names, t.Name)
	}
	sort.Strings(names)
	return "", fmt.Errorf("%w: chat_template lists %q and no \"default\"", ErrChatTemplate, names)
}

// configToken reads a special token written as a string, null, or an
// AddedToken object {"content": …}.
func configToken(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", err
	}
	if obj.Content == nil {
		return "", errors.New("want a string or an object with \"content\"")
	}
	return *obj.Content, nil
}

// File returns the path or name the template was loaded from.
func (c *ChatTemplate) File() string { return c.file }

// Source returns the template's Jinja text as written in the config.
func (c *ChatTemplate) Source() string { return c.source }

// Render returns the prompt text for msgs, as transformers.js's
// apply_chat_template(msgs, {tokenize: false, add_generation_prompt})
// does; with addGenerationPrompt the text ends with the header of the
// assistant's turn. Image parts render as the template writes them (one
// <|image_pad|> each for Qwen2-VL; see ExpandImagePads). Errors are
// *ChatTemplateError wrapping ErrBadPrompt (a malformed message, or the
// template's raise_exception) or ErrUnsupported (a construct the engine
// lacks).
func (c *ChatTemplate) Render(msgs []ChatMessage, addGenerationPrompt bool) (text string, err error) {
	list := make([]jinja.Value, len(msgs))
	for i, m := range msgs {
		if err := m.validate(i); err != nil {
			return "", &ChatTemplateError{File: c.file, Err: err}
		}
		list[i] = m.value()
	}
	vars := map[string]jinja.Value{
		"messages":              jinja.NewList(list),
		"add_generation_prompt": jinja.NewBool(addGenerationPrompt),
		"tools":                 jinja.None(),
		"documents":             jinja.None(),
	}
	for k, v := range c.tokens {
		vars[k] = jinja.NewString(v)
	}
	defer func() {
		if r := recover(); r != nil {
			text, err = "", &ChatTemplateError{File: c.file, Err: fmt.Errorf("%w: template engine failed: %v", ErrUnsupported, r)}
		}
	}()
	out, err := c.tmpl.RenderValues(vars)
	if err != nil {
		return "", &ChatTemplateError{File: c.file, Err: renderError(err)}
	}
	return out, nil
}

// renderError classifies an engine error: an unknown filter, method or
// function is ErrUnsupported; anything else (raise_exception in the
// template) is ErrBadPrompt.
func renderError(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "unknown filter") || strings.Contains(msg, "unknown test") ||
		strings.Contains(msg, "is not callable") {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	return fmt.Errorf("%w: %v", ErrBadPrompt, err)
}

// ExpandImagePads replaces the i-th <|image_pad|> of text with counts[i]
// copies of it, as transformers.js's Qwen2VLProcessor does with
// grid_t·grid_h·grid_w / merge² per image. The number of placeholders must
// equal len(counts) and each count must be in 1…MaxImageTokens; errors wrap
// ErrBadPrompt.
func ExpandImagePads(text string, counts []int) (string, error) {
	if n := strings.Count(text, ImagePad); n != len(counts) {
		return "", fmt.Errorf("%w: the prompt has %d image placeholders for %d images", ErrBadPrompt, n, len(counts))
	}
	total := 0
	for i, n := range counts {
		if n < 1 || n > MaxImageTokens {
			return "", fmt.Errorf("%w: image %d has %d tokens (want 1…%d)", ErrBadPrompt, i, n, MaxImageTokens)
		}
		total += n
	}
	var b strings.Builder
	b.Grow(len(text) + (total-len(counts))*len(ImagePad))
	rest := text
	for _, n := range counts {
		i := strings.Index(rest, ImagePad)
		b.WriteString(rest[:i])
		b.WriteString(strings.Repeat(ImagePad, n))
		rest = rest[i+len(ImagePad):]
	}
	b.WriteString(rest)
	return b.String(), nil
}

// EncodeChat renders msgs with c and encodes the text without adding
// special tokens, as transformers.js's apply_chat_template(msgs, {tokenize:
// true, add_generation_prompt}) does. When imageTokens is not empty, the
// image placeholders are first expanded by ExpandImagePads; empty leaves
// one placeholder per image. A message text that contains one of t's
// special tokens is rejected (ErrBadPrompt), so user text cannot forge
// turns or image slots. It returns the encoded text and its ids.
func (t *Tokenizer) EncodeChat(c *ChatTemplate, msgs []ChatMessage, addGenerationPrompt bool, imageTokens []int) (string, []int, error) {
	for i, m := range msgs {
		err := m.texts(func(s string) error {
			for _, a := range t.added {
				if a.Special && strings.Contains(s, a.Content) {
					return fmt.Errorf("%w: message %d contains the special token %s", ErrBadPrompt, i, a.Content)
				}
			}
			return nil
		})
		if err != nil {
			return "", nil, &ChatTemplateError{File: c.file, Err: err}
		}
	}
	text, err := c.Render(msgs, addGenerationPrompt)
	if err != nil {
		return "", nil, err
	}
	if len(imageTokens) > 0 {
		if text, err = ExpandImagePads(text, imageTokens); err != nil {
			return "", nil, err
		}
	}
	ids, err := t.Encode(text)
	if err != nil {
		return "", nil, fmt.Errorf("tokenizer: encode chat: %w", err)
	}
	return text, ids, nil
}
