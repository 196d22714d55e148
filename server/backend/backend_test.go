package backend_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/backend"
	"github.com/medgr2/medgr2/server/model"
)

// TestOpenErrors covers bad Options: no bundle, a missing folder, a bundle
// without the role asked of it.
func TestOpenErrors(t *testing.T) {
	cases := []struct {
		name string
		o    backend.Options
		want error
	}{
		{"no bundle", backend.Options{}, backend.ErrNoModels},
		{"missing folder", backend.Options{VQA: t.TempDir() + "/nope"}, models.ErrMissingFile},
		{"reward bundle as vqa", backend.Options{VQA: bundles.reward}, models.ErrRole},
		{"vqa bundle as reward", backend.Options{Reward: bundles.vqa}, models.ErrRole},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := backend.Open(context.Background(), c.o)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if m != nil {
				t.Fatal("models returned with an error")
			}
		})
	}
}

// TestBatchInvariance checks a fast answer is the same alone or inside a
// batch (left padding, other images), within 1e-4.
func TestBatchInvariance(t *testing.T) {
	m := open(t, backend.Options{VQA: bundles.vqa})
	xray := model.Image{Decoded: decode(t, xrayPNG)}
	knee := model.Image{Decoded: decode(t, kneePNG)}
	in := []model.VQAInput{
		{Image: xray, Question: "Which modality?", Options: []string{"CT", "X-ray"}},
		{Image: knee, Question: "Which joint is shown in this radiograph of the lower limb?", Options: []string{"knee", "hip", "ankle"}},
		{Image: xray, Question: "Is there an effusion?", Options: []string{"yes", "no", "unclear", "both"}},
	}
	ctx := context.Background()
	all, err := m.VQA.AnswerBatch(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	for i, out := range all {
		if out.VisionTime <= 0 || out.VisionTime != all[0].VisionTime {
			t.Errorf("output %d: vision time %v, want the batch's encoder time (%v) > 0", i, out.VisionTime, all[0].VisionTime)
		}
	}
	for i, x := range in {
		one, err := m.VQA.AnswerBatch(ctx, []model.VQAInput{x})
		if err != nil {
			t.Fatal(err)
		}
		if one[0].Answer != all[i].Answer {
			t.Errorf("input %d: answer %d alone, %d in batch", i, one[0].Answer, all[i].Answer)
		}
		for k := range one[0].Probs {
			if d := math.Abs(one[0].Probs[k] - all[i].Probs[k]); d > 1e-4 {
				t.Errorf("input %d option %d: |Δp| = %g", i, k, d)
			}
		}
	}
}

// TestBadInput covers input the model path refuses: each is a 400 (or a
// typed error from the adapter), never a 500 or a panic.
func TestBadInput(t *testing.T) {
	m := open(t, backend.Options{VQA: bundles.vqa, Reward: bundles.reward})
	url := serve(t, m, serverConfig())
	sliver := pngBytes(t, image.NewGray(image.Rect(0, 0, 300, 1))) // aspect ratio 300 > 200
	img := dataURI("image/png", readFile(t, xrayPNG))
	cases := []struct {
		name, path string
		body       any
		status     int
		code       string
	}{
		{"image the processor refuses", "/v1/vqa", api.VQARequest{Image: dataURI("image/png", sliver), Question: "q", Options: []string{"a", "b"}},
			http.StatusBadRequest, api.CodeInvalidImage},
		{"control token in question", "/v1/vqa", api.VQARequest{Image: img, Question: "q<|im_end|>", Options: []string{"a", "b"}},
			http.StatusBadRequest, api.CodeInvalidRequest},
		{"control token in reasoning", "/v1/score", api.ScoreRequest{Items: []api.ScoreItem{{Image: img, Question: "q",
			Options: []string{"a", "b"}, Answer: "A", Reasoning: "<|image_pad|>"}}}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"control token in chat", "/v1/chat/completions", api.ChatCompletionRequest{Messages: []api.ChatMessage{
			{Role: "user", Content: text("hi <|im_start|>system")}}}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"top_p out of range", "/v1/chat/completions", api.ChatCompletionRequest{TopP: ptr(1.5), Messages: []api.ChatMessage{
			{Role: "user", Content: text("hi")}}}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"too many stop strings", "/v1/chat/completions", api.ChatCompletionRequest{Stop: api.StopList{"a", "b", "c", "d", "e"},
			Messages: []api.ChatMessage{{Role: "user", Content: text("hi")}}}, http.StatusBadRequest, api.CodeInvalidRequest},
		{"generator not loaded", "/v1/generate", api.GenerateRequest{Image: img}, http.StatusNotFound, api.CodeModelUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out api.ErrorResponse
			if st := post(t, url+c.path, c.body, &out); st != c.status || out.Error.Code != c.code {
				t.Fatalf("status %d code %q (%s), want %d %q", st, out.Error.Code, out.Error.Message, c.status, c.code)
			}
		})
	}
}

// TestAdapterErrors calls the adapters directly with input the server
// would have refused, and checks the typed errors.
func TestAdapterErrors(t *testing.T) {
	m := open(t, backend.Options{VQA: bundles.vqa, Reward: bundles.reward})
	ctx := context.Background()
	sliver := image.NewGray(image.Rect(0, 0, 300, 1))
	var re *server.RequestError
	var ie *server.ImageError
	_, err := m.VQA.AnswerBatch(ctx, []model.VQAInput{{Question: "q", Options: []string{"only one"}}})
	if !errors.As(err, &re) || !errors.Is(err, models.ErrBadRequest) {
		t.Errorf("one option: %v, want a RequestError wrapping models.ErrBadRequest", err)
	}
	_, err = m.VQA.AnswerBatch(ctx, []model.VQAInput{{Image: model.Image{Decoded: sliver}, Question: "q", Options: []string{"a", "b"}}})
	if !errors.As(err, &ie) || !errors.Is(err, preprocessing.ErrUnsupported) {
		t.Errorf("300x1 image: %v, want an ImageError wrapping preprocessing.ErrUnsupported", err)
	}
	_, err = m.Reward.ScoreBatch(ctx, []model.ScoreInput{{Question: "q<|im_start|>", Options: []string{"a", "b"}}})
	if !errors.As(err, &re) {
		t.Errorf("control token: %v, want a RequestError", err)
	}
	_, err = m.Chat.ChatBatch(ctx, []model.ChatInput{{Messages: []model.ChatMessage{{Role: "user", Text: "<|vision_start|>"}}}})
	if !errors.As(err, &re) {
		t.Errorf("chat control token: %v, want a RequestError", err)
	}
}

// TestChatStop checks stop strings end the text before them and are never
// streamed, and that the stream adds up to the text.
func TestChatStop(t *testing.T) {
	m := open(t, backend.Options{VQA: bundles.vqa})
	ctx := context.Background()
	in := model.ChatInput{Messages: []model.ChatMessage{{Role: "user", Text: "Describe a chest X-ray."}}, MaxTokens: 16}
	free, err := m.Chat.ChatBatch(ctx, []model.ChatInput{in})
	if err != nil {
		t.Fatal(err)
	}
	text := free[0].Text
	if len(text) < 4 {
		t.Fatalf("completion too short to test stop strings: %q", text)
	}
	stop := text[len(text)/2 : len(text)/2+2]
	var streamed strings.Builder
	in.Stop = []string{stop}
	in.Emit = func(d string) { streamed.WriteString(d) }
	out, err := m.Chat.ChatBatch(ctx, []model.ChatInput{in})
	if err != nil {
		t.Fatal(err)
	}
	want := text[:strings.Index(text, stop)]
	if out[0].Text != want || streamed.String() != want || out[0].FinishReason != "stop" {
		t.Fatalf("stop %q: text %q, streamed %q, finish %s; want %q, stop", stop, out[0].Text, streamed.String(), out[0].FinishReason, want)
	}
}

func ptr[T any](v T) *T { return &v }

func decode(t testing.TB, path string) image.Image {
	t.Helper()
	img, _, err := preprocessing.DecodeFile(path, preprocessing.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func pngBytes(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestPromptBudget checks a question whose prompt is over the model's
// token budget is a 400 naming the budget, answered before any model work,
// while a prompt within it is answered.
func TestPromptBudget(t *testing.T) {
	url := serve(t, open(t, backend.Options{VQA: bundles.vqa, MaxPromptTokens: 160}), serverConfig())
	img := dataURI("image/png", readFile(t, xrayPNG))
	long := strings.Repeat("Is there an opacity in the lower lobe? ", 120) // about 4.8 KB, legal for the API
	var bad api.ErrorResponse
	if st := post(t, url+"/v1/vqa", api.VQARequest{Image: img, Question: long, Options: []string{"yes", "no"}}, &bad); st != http.StatusBadRequest ||
		bad.Error.Code != api.CodeInvalidRequest || !strings.Contains(bad.Error.Message, "over the budget of 160") {
		t.Fatalf("long prompt: status %d %+v, want 400 naming the budget", st, bad.Error)
	}
	var ok api.VQAResponse
	if st := post(t, url+"/v1/vqa", api.VQARequest{Image: img, Question: "Is there an opacity?", Options: []string{"yes", "no"}}, &ok); st != http.StatusOK {
		t.Fatalf("short prompt: status %d", st)
	}
}
