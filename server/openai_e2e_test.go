package server_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/server"
)

// openaiModules is where scripts/fetch-openai-client.sh (make setup) puts
// the openai npm client.
const openaiModules = "../third_party/openai-client/node_modules"

// TestOpenAIClientsEndToEnd runs the official openai npm client and curl
// against /v1/chat/completions, streaming and not.
func TestOpenAIClientsEndToEnd(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found on PATH: install nodejs/npm (.ci/run does) : %v", err)
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl not found on PATH: %v", err)
	}
	mods, _ := filepath.Abs(openaiModules)
	if _, err := os.Stat(filepath.Join(mods, "openai", "package.json")); err != nil {
		t.Fatalf("openai npm client missing in %s: run scripts/fetch-openai-client.sh (make setup): %v", mods, err)
	}
	_, ts := start(t, server.Config{APIKeys: []string{"sk-test"}}, fakes())
	img := dataURI("image/png", readFile(t, xrayPNG))

	out, err := exec.Command(node, "testdata/openai_client.cjs", mods, ts.URL, "sk-test", img).CombinedOutput()
	if err != nil {
		t.Fatalf("node client: %v\n%s", err, out)
	}
	var got struct {
		Text, Streamed, Finish string
		Chunks, BadKey         int
		Usage, StreamUsage     struct {
			CompletionTokens int `json:"completion_tokens"`
		}
		Short struct {
			Tokens int
			Finish string
		}
		Models []string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	if got.Text == "" || got.Text != got.Streamed || got.Chunks < 3 || got.Finish != "stop" || got.BadKey != 401 || got.Usage.CompletionTokens == 0 {
		t.Fatalf("openai client results %+v", got)
	}
	if got.StreamUsage != got.Usage || got.Short.Tokens != 3 || got.Short.Finish != "length" {
		t.Fatalf("stream usage %+v (want %+v), max_completion_tokens 3 gave %+v", got.StreamUsage, got.Usage, got.Short)
	}
	if len(got.Models) != 4 || !slices.Contains(got.Models, "fake-chat") {
		t.Fatalf("models.list(): %v", got.Models)
	}
	if !strings.Contains(got.Text, "1 image") {
		t.Fatalf("model did not see the image: %q", got.Text)
	}

	body := `{"model":"medgr2","messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"` + img + `"}}]}]`
	for _, stream := range []bool{false, true} {
		b := body + `,"stream":false}`
		if stream {
			b = body + `,"stream":true}`
		}
		out, err := exec.Command(curl, "-sS", "-N", "-H", "Authorization: Bearer sk-test", "-H", "Content-Type: application/json",
			"-d", b, ts.URL+"/v1/chat/completions").CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v\n%s", err, out)
		}
		s := string(out)
		if stream && (!strings.Contains(s, "data: {") || !strings.HasSuffix(strings.TrimSpace(s), "data: [DONE]") || !strings.Contains(s, `"chat.completion.chunk"`)) {
			t.Fatalf("curl stream output %q", s)
		}
		if !stream && !strings.Contains(s, `"object":"chat.completion"`) {
			t.Fatalf("curl output %q", s)
		}
	}
}
