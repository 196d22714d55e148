package server_test

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/medgr2/medgr2/preprocessing"
	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/model"
)

// DICOM files from preprocessing/testdata (see its README for licences).
const (
	crDICOM = "../preprocessing/testdata/cr_chest_monochrome1.dcm"
	mrDICOM = "../preprocessing/testdata/mr_prostate.dcm"
)

// TestDefaultDecoder runs uploads through the default decoder
// (PreprocessingDecoder): DICOM is accepted, corrupt or unsupported input
// is 400 invalid_image, and input over the byte, pixel or decoded-size
// limit is 413.
func TestDefaultDecoder(t *testing.T) {
	cr := readFile(t, crDICOM)
	corrupt := append([]byte(nil), cr[:len(cr)/3]...) // truncated inside the pixel data
	wide := encodePNG(t, image.NewGray(image.Rect(0, 0, 2000, 2000)))
	deep := encodePNG(t, image.NewNRGBA64(image.Rect(0, 0, 600, 600)))  // 2.9 MB decoded
	grey16 := encodePNG(t, image.NewGray16(image.Rect(0, 0, 600, 600))) // 0.7 MB decoded
	_, ts := start(t, server.Config{MaxImagePixels: 1_000_000, MaxImageDecodedBytes: 2 << 20}, fakes())
	cases := []struct {
		name   string
		image  []byte
		status int
		code   string
	}{
		{"dicom cr", cr, http.StatusOK, ""},
		{"dicom mr", readFile(t, mrDICOM), http.StatusOK, ""},
		{"png", readFile(t, xrayPNG), http.StatusOK, ""},
		{"jpeg", readFile(t, smearJPG), http.StatusOK, ""},
		{"corrupt dicom", corrupt, http.StatusBadRequest, api.CodeInvalidImage},
		{"dicom header only", append(make([]byte, 128), []byte("DICM")...), http.StatusBadRequest, api.CodeInvalidImage},
		{"not an image", []byte("hello, this is text"), http.StatusBadRequest, api.CodeInvalidImage},
		{"over the pixel limit", wide, http.StatusRequestEntityTooLarge, api.CodeImageTooLarge},
		{"16-bit grey png under the decoded-size limit", grey16, http.StatusOK, ""},
		{"16-bit rgb png over the decoded-size limit", deep, http.StatusRequestEntityTooLarge, api.CodeImageTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body map[string]any
			resp := do(t, "POST", ts.URL+"/v1/vqa", "", api.VQARequest{Image: dataURI("application/octet-stream", c.image),
				Question: "Which modality?", Options: []string{"CT", "X-ray"}}, &body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, c.status, body)
			}
			if c.code != "" {
				if got := body["error"].(map[string]any)["code"]; got != c.code {
					t.Fatalf("code %v, want %s", got, c.code)
				}
			}
		})
	}
}

// TestDefaultDecoderByteLimit checks MaxImageBytes reaches the decoder.
func TestDefaultDecoderByteLimit(t *testing.T) {
	dec := server.PreprocessingDecoder(preprocessing.Limits{MaxBytes: 1000})
	_, err := dec(readFile(t, crDICOM))
	if !errors.Is(err, server.ErrImageTooLarge) {
		t.Fatalf("err = %v, want ErrImageTooLarge", err)
	}
	if _, err := server.PreprocessingDecoder(preprocessing.Limits{})(readFile(t, crDICOM)); err != nil {
		t.Fatalf("default limits: %v", err)
	}
}

// TestCacheHitSkipsDecode checks that a repeated request is answered from
// the cache without decoding the image again.
func TestCacheHitSkipsDecode(t *testing.T) {
	dec, calls := countingDecoder()
	_, ts := start(t, server.Config{DecodeImage: dec}, fakes())
	req := api.VQARequest{Image: dataURI("image/png", readFile(t, xrayPNG)), Question: "Which modality?", Options: []string{"CT", "X-ray"}}
	for i := range 3 {
		var out api.VQAResponse
		if resp := do(t, "POST", ts.URL+"/v1/vqa", "", req, &out); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
		if out.Cached != (i > 0) {
			t.Fatalf("request %d: cached = %v", i, out.Cached)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("decoder called %d times for 3 identical requests, want 1", n)
	}
}

// countingDecoder returns the default decoder wrapped to count its calls
// (safe for the concurrent job worker).
func countingDecoder() (server.DecodeFunc, *atomic.Int64) {
	calls := new(atomic.Int64)
	dec := server.PreprocessingDecoder(preprocessing.Limits{})
	return func(b []byte) (model.Image, error) { calls.Add(1); return dec(b) }, calls
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestTimingHasImageStages checks that an answer's timing carries the
// decode of its image and that the stages fit inside the total.
func TestTimingHasImageStages(t *testing.T) {
	_, ts := start(t, server.Config{}, fakes())
	var out api.VQAResponse
	req := api.VQARequest{Image: dataURI("image/jpeg", readFile(t, smearJPG)), Question: "Which cells?", Options: []string{"red", "white"}}
	if resp := do(t, "POST", ts.URL+"/v1/vqa", "", req, &out); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	tm := out.Timing
	if tm.DecodeMS <= 0 {
		t.Errorf("decode_ms = %v for a 640×480 JPEG, want > 0", tm.DecodeMS)
	}
	if sum := tm.DecodeMS + tm.PreprocessMS + tm.QueueMS + tm.ModelMS; sum > tm.TotalMS {
		t.Errorf("stages sum to %.3f ms, over the total %.3f ms", sum, tm.TotalMS)
	}
}

// TestRequestImageLimit checks Config.MaxRequestImages on /v1/score and
// chat: one image over the limit is a 400 naming it, before any image is
// decoded; at the limit the request runs.
func TestRequestImageLimit(t *testing.T) {
	dec, calls := countingDecoder()
	_, ts := start(t, server.Config{MaxRequestImages: 2, DecodeImage: dec}, fakes())
	img := dataURI("image/png", readFile(t, xrayPNG))
	score := func(n int) api.ScoreRequest {
		var r api.ScoreRequest
		for i := range n {
			r.Items = append(r.Items, api.ScoreItem{Image: img, Question: fmt.Sprint("Question ", i), Options: []string{"a", "b"}, Answer: "A"})
		}
		return r
	}
	chat := func(n int) api.ChatCompletionRequest {
		parts := []api.ContentPart{{Type: "text", Text: "What is shown?"}}
		for range n {
			parts = append(parts, api.ContentPart{Type: "image_url", ImageURL: &api.ImageURL{URL: img}})
		}
		return api.ChatCompletionRequest{Model: "chat", MaxTokens: 4, Messages: []api.ChatMessage{{Role: "user", Content: api.ChatContent{Parts: parts}}}}
	}
	cases := []struct {
		name, path string
		body       any
		status     int
	}{
		{"score at the limit", "/v1/score", score(2), http.StatusOK},
		{"score over the limit", "/v1/score", score(3), http.StatusBadRequest},
		{"chat at the limit", "/v1/chat/completions", chat(2), http.StatusOK},
		{"chat over the limit", "/v1/chat/completions", chat(3), http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := calls.Load()
			var body map[string]any
			resp := do(t, "POST", ts.URL+c.path, "", c.body, &body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, c.status, body)
			}
			if c.status == http.StatusBadRequest {
				if msg := fmt.Sprint(body["error"]); !strings.Contains(msg, "limit of 2 per request") {
					t.Errorf("error %s does not name the limit", msg)
				}
				if calls.Load() != before {
					t.Error("images decoded for a request over the limit")
				}
			}
		})
	}
}
