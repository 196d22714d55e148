package models

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/tokenizer"
)

// exportTemplated exports a small bundle and replaces the chat template of
// its tokenizer_config.json with tmpl ("" removes the field).
func exportTemplated(t *testing.T, tmpl string) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := Export(context.Background(), dir, DefaultConfig(0), ExportOptions{Tokenizer: "testdata/vqa_tokenizer.json", Seed: 2}); err != nil {
		t.Fatal(err)
	}
	cfg := hfTokenizerConfig{TokenizerClass: "Qwen2Tokenizer", ChatTemplate: tmpl, EOSToken: "<|im_end|>", PADToken: "<|endoftext|>"}
	if err := writeJSON(filepath.Join(dir, HFTokenizerConfig), cfg); err != nil {
		t.Fatal(err)
	}
	if tmpl == "" {
		if err := os.WriteFile(filepath.Join(dir, HFTokenizerConfig), []byte(`{"tokenizer_class": "Qwen2Tokenizer"}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestPromptsFollowTheFoldersTemplate checks VQA prompts come from the
// folder's own chat_template: the shipped Qwen2-VL template gives exactly
// tokenizer.VQAPrompt's ids, a folder without a template falls back to
// them, and a different template changes the prompt.
func TestPromptsFollowTheFoldersTemplate(t *testing.T) {
	ctx := context.Background()
	req := VQARequest{Question: "Which modality?", Options: []string{"CT", "MRI"}}
	custom := strings.Replace(qwen2VLChatTemplate, "<|im_start|>{{ message['role'] }}\n", "<|im_start|>{{ message['role'] }}\nNote: ", 1)
	cases := []struct {
		name, tmpl string
		same       bool // ids equal tokenizer.VQAPrompt's
		has        string
	}{
		{"qwen2-vl template", qwen2VLChatTemplate, true, ""},
		{"no template", "", true, ""},
		{"another template", custom, false, "Note: Which modality?"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := Open(ctx, exportTemplated(t, c.tmpl), VLMOptions{Device: runtime.CPU})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			if (v.chat == nil) != (c.tmpl == "") {
				t.Fatalf("chat template loaded: %v, want %v", v.chat != nil, c.tmpl != "")
			}
			p, err := v.vqaPrompt(req, "")
			if err != nil {
				t.Fatal(err)
			}
			want, err := v.tok.EncodePrompt(tokenizer.VQAPrompt{System: v.Manifest().Prompt.System, Question: req.Question, Options: req.Options})
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(p.IDs, want.IDs) != c.same {
				t.Fatalf("ids equal to VQAPrompt's: %v, want %v", !c.same, c.same)
			}
			text, err := v.tok.Decode(p.IDs, false)
			if err != nil || !strings.Contains(text, c.has) {
				t.Fatalf("prompt %q (%v) lacks %q", text, err, c.has)
			}
		})
	}
}

// TestUnsupportedChatTemplate checks a template the engine cannot run is
// one error naming tokenizer_config.json, at Open.
func TestUnsupportedChatTemplate(t *testing.T) {
	dir := exportTemplated(t, "{% include 'other.jinja' %}")
	_, err := Open(context.Background(), dir, VLMOptions{Device: runtime.CPU})
	var be *BundleError
	if !errors.As(err, &be) || be.File != HFTokenizerConfig || !errors.Is(err, ErrBadTokenizer) {
		t.Fatalf("Open = %v, want a *BundleError on %s wrapping ErrBadTokenizer", err, HFTokenizerConfig)
	}
}

// TestPromptIDsReused checks VQARequest.PromptIDs: Answer's prompt is the
// ids EncodeVQA gave (so a caller that counted the prompt does not have
// it encoded again), the answer is the same as without them, and ids made
// for another suffix or another image size are ignored.
func TestPromptIDsReused(t *testing.T) {
	ctx := context.Background()
	v, err := Open(ctx, exportTemplated(t, qwen2VLChatTemplate), VLMOptions{Device: runtime.CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	req := VQARequest{Question: "Which modality?", Options: []string{"CT", "MRI"}}
	ids, err := v.EncodeVQA(req, 0)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := v.vqaPrompt(req, FastAnswerPrefix)
	if err != nil || !slices.Equal(fresh.IDs, ids) {
		t.Fatalf("EncodeVQA %v, Answer's prompt %v (%v)", ids, fresh.IDs, err)
	}
	// A marked copy shows which ids the prompt came from.
	marked := slices.Clone(ids)
	marked[0] = v.st.PAD
	pads := append(slices.Clone(ids), v.st.ImagePad)
	cases := []struct {
		name   string
		ids    []int
		suffix string
		want   []int
	}{
		{"taken", marked, FastAnswerPrefix, marked},
		{"other suffix", marked, "", nil},
		{"other image size", pads, FastAnswerPrefix, ids},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := req
			r.PromptIDs = c.ids
			p, err := v.vqaPrompt(r, c.suffix)
			if err != nil {
				t.Fatal(err)
			}
			want := c.want
			if want == nil {
				e, err := v.encodeChat(v.VQAPrompt(req, 0), nil, c.suffix)
				if err != nil {
					t.Fatal(err)
				}
				want = e.IDs
			}
			if !slices.Equal(p.IDs, want) {
				t.Errorf("prompt %v, want %v", p.IDs, want)
			}
		})
	}
	with := req
	with.PromptIDs = ids
	a, err := v.Answer(ctx, []VQARequest{req, with}, ReasonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a[0].Probs, a[1].Probs) {
		t.Errorf("probabilities %v without PromptIDs, %v with", a[0].Probs, a[1].Probs)
	}
}

// BenchmarkEncodeVQA is the prompt encoding a server request saves with
// VQARequest.PromptIDs (chat template and tokenizer, a 4-option question
// with a 256-token image), on the committed default VQA bundle.
func BenchmarkEncodeVQA(b *testing.B) {
	v, err := Open(context.Background(), filepath.Join("..", "models", "default", "vqa"), VLMOptions{Device: runtime.CPU})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	req := VQARequest{Question: "What abnormality is seen in this knee X-ray image?",
		Options: []string{"Osteoarthritis grade 2", "Normal knee joint", "Fracture of the patella", "Osteoarthritis grade 4"}}
	for b.Loop() {
		if _, err := v.EncodeVQA(req, 256); err != nil {
			b.Fatal(err)
		}
	}
}
