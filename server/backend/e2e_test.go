package backend_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/backend"
)

// post sends v as JSON and decodes the answer into out.
func post(t testing.TB, url string, v, out any) int {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("POST %s: status %d: %v", url, resp.StatusCode, err)
	}
	return resp.StatusCode
}

// TestEndToEndVQA serves a real random bundle and asks /v1/vqa about real
// images (PNG and DICOM) in both modes.
func TestEndToEndVQA(t *testing.T) {
	url := serve(t, open(t, backend.Options{VQA: bundles.vqa}), serverConfig())
	cases := []struct {
		name, image, mode string
	}{
		{"png fast", dataURI("image/png", readFile(t, xrayPNG)), api.ModeFast},
		{"png reason", dataURI("image/png", readFile(t, kneePNG)), api.ModeReason},
		{"dicom fast", dataURI("application/dicom", readFile(t, crDICOM)), api.ModeFast},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := []string{"CT", "MRI", "X-ray", "Ultrasound"}
			var out api.VQAResponse
			if st := post(t, url+"/v1/vqa", api.VQARequest{Image: c.image, Question: "Which imaging modality is shown?", Options: opts, Mode: c.mode}, &out); st != http.StatusOK {
				t.Fatalf("status %d", st)
			}
			checkVQA(t, out, opts)
			if out.Model.Name != "test-vqa" || out.Model.Version != "7" {
				t.Errorf("model = %+v, want test-vqa@7", out.Model)
			}
			if (c.mode == api.ModeReason) != (out.Reasoning != "") {
				t.Errorf("mode %s: reasoning %q", c.mode, out.Reasoning)
			}
			if !out.Cached && (out.Timing.DecodeMS <= 0 || out.Timing.PreprocessMS <= 0) {
				t.Errorf("timing %+v: want the image's decode and preprocess times", out.Timing)
			}
		})
	}
}

func checkVQA(t *testing.T, out api.VQAResponse, opts []string) {
	t.Helper()
	if len(out.Probabilities) != len(opts) {
		t.Fatalf("%d probabilities for %d options", len(out.Probabilities), len(opts))
	}
	sum, best, bestP := 0.0, "", -1.0
	for l, p := range out.Probabilities {
		if p < 0 || p > 1 || math.IsNaN(p) {
			t.Fatalf("P(%s) = %v", l, p)
		}
		sum += p
		if p > bestP {
			best, bestP = l, p
		}
	}
	if math.Abs(sum-1) > 1e-5 {
		t.Fatalf("probabilities sum to %v", sum)
	}
	if len(out.Answer) != 1 || out.Answer[0] < 'A' || int(out.Answer[0]-'A') >= len(opts) || out.AnswerText != opts[out.Answer[0]-'A'] {
		t.Fatalf("answer %q / %q", out.Answer, out.AnswerText)
	}
	if out.Reasoning == "" && out.Answer != best {
		t.Fatalf("fast answer %s is not the most probable option %s", out.Answer, best)
	}
}

// TestEndToEndScoreAndGenerate scores samples with a reward bundle and asks
// the generator for items.
func TestEndToEndScoreAndGenerate(t *testing.T) {
	url := serve(t, open(t, backend.Options{Generator: bundles.vqa, Reward: bundles.reward}), serverConfig())
	img := dataURI("image/png", readFile(t, xrayPNG))
	opts := []string{"normal", "pneumonia"}
	items := []api.ScoreItem{
		{Image: img, Question: "Is there pneumonia?", Options: opts, Answer: "B", Reasoning: "The lungs show consolidation."},
		{Image: img, Question: "Is there pneumonia?", Options: opts, Answer: "A", Reasoning: "<think>Clear lungs.</think><answer>A</answer>"},
		{Image: img, Question: "Is there pneumonia?", Options: opts, Answer: "A"},
	}
	var sc api.ScoreResponse
	if st := post(t, url+"/v1/score", api.ScoreRequest{Items: items}, &sc); st != http.StatusOK {
		t.Fatalf("score status %d", st)
	}
	if len(sc.Scores) != len(items) || sc.Model.Name != "test-reward" {
		t.Fatalf("score response %+v", sc)
	}
	for i, s := range sc.Scores {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			t.Fatalf("score %d = %v", i, s)
		}
	}
	if sc.Scores[0] == sc.Scores[1] {
		t.Errorf("different samples scored the same: %v", sc.Scores)
	}
	var gen api.GenerateResponse
	if st := post(t, url+"/v1/generate", api.GenerateRequest{Image: img, NumItems: 2, Metadata: map[string]string{"modality": "X-Ray"}}, &gen); st != http.StatusOK {
		t.Fatalf("generate status %d", st)
	}
	if gen.Model.Name != "test-vqa" || len(gen.Items) > 2 || gen.Items == nil {
		t.Fatalf("generate response %+v", gen)
	}
}

// TestEndToEndChatStream streams a chat completion about a real image and
// checks the deltas add up to the non-streamed completion (greedy).
func TestEndToEndChatStream(t *testing.T) {
	url := serve(t, open(t, backend.Options{VQA: bundles.vqa}), serverConfig())
	zero := 0.0
	req := api.ChatCompletionRequest{MaxTokens: 12, Temperature: &zero, Messages: []api.ChatMessage{
		{Role: "system", Content: text("You read chest X-rays.")},
		{Role: "user", Content: api.ChatContent{Parts: []api.ContentPart{
			{Type: "image_url", ImageURL: &api.ImageURL{URL: dataURI("image/png", readFile(t, xrayPNG))}},
			{Type: "text", Text: "Describe the image."}}}},
	}}
	var full api.ChatCompletion
	if st := post(t, url+"/v1/chat/completions", req, &full); st != http.StatusOK {
		t.Fatalf("status %d", st)
	}
	if len(full.Choices) != 1 || full.Usage.CompletionTokens == 0 || full.Usage.CompletionTokens > 12 || full.Usage.PromptTokens < 20 {
		t.Fatalf("completion %+v", full)
	}
	req.Stream = true
	deltas, finish := stream(t, url+"/v1/chat/completions", req)
	if got, want := strings.Join(deltas, ""), full.Choices[0].Message.Content; got != want {
		t.Fatalf("streamed %q, want %q", got, want)
	}
	if finish != *full.Choices[0].FinishReason {
		t.Fatalf("finish %q, want %q", finish, *full.Choices[0].FinishReason)
	}
}

func text(s string) api.ChatContent {
	return api.ChatContent{Parts: []api.ContentPart{{Type: "text", Text: s}}}
}

// stream posts a streaming request and returns the content deltas and the
// finish reason.
func stream(t *testing.T, url string, req api.ChatCompletionRequest) ([]string, string) {
	t.Helper()
	b, _ := json.Marshal(req)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var deltas []string
	finish, done := "", false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if line == "[DONE]" {
			done = true
			break
		}
		var ch api.ChatCompletionChunk
		if err := json.Unmarshal([]byte(line), &ch); err != nil || len(ch.Choices) != 1 {
			t.Fatalf("bad chunk %q: %v", line, err)
		}
		if d := ch.Choices[0].Delta; d != nil && d.Content != "" {
			deltas = append(deltas, d.Content)
		}
		if f := ch.Choices[0].FinishReason; f != nil {
			finish = *f
		}
	}
	if !done || finish == "" {
		t.Fatalf("stream ended without finish (%q) or [DONE] (%v)", finish, done)
	}
	return deltas, finish
}
