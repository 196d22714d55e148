package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/api"
)

func TestChatMaxCompletionTokens(t *testing.T) {
	_, ts := start(t, server.Config{}, fakes())
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name, body string
		status     int
		field      string
		tokens     int
		finish     string
	}{
		{"max_completion_tokens", `{` + msgs + `,"max_completion_tokens":2}`, 200, "", 2, "length"},
		{"both equal", `{` + msgs + `,"max_completion_tokens":3,"max_tokens":3}`, 200, "", 3, "length"},
		{"both differ", `{` + msgs + `,"max_completion_tokens":3,"max_tokens":4}`, 400, "max_completion_tokens", 0, ""},
		{"too many", `{` + msgs + `,"max_completion_tokens":100000}`, 400, "max_completion_tokens", 0, ""},
		{"stream_options without stream", `{` + msgs + `,"stream_options":{"include_usage":true}}`, 400, "stream_options", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawDo(t, "POST", ts.URL+"/v1/chat/completions", "", "application/json", strings.NewReader(tc.body))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if tc.status != 200 {
				var e api.ErrorResponse
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Field != tc.field {
					t.Fatalf("error %s: %v", body, err)
				}
				return
			}
			var cc api.ChatCompletion
			if err := json.Unmarshal(body, &cc); err != nil {
				t.Fatal(err)
			}
			if cc.Usage.CompletionTokens != tc.tokens || *cc.Choices[0].FinishReason != tc.finish ||
				len(strings.Fields(cc.Choices[0].Message.Content)) != tc.tokens {
				t.Fatalf("completion %+v", cc)
			}
		})
	}
}

// TestChatStreamIncludeUsage checks the usage chunk of a stream asked for
// with stream_options.include_usage: last before [DONE], empty choices,
// the same counts as the non-streaming answer; and none without it.
func TestChatStreamIncludeUsage(t *testing.T) {
	_, ts := start(t, server.Config{}, fakes())
	msgs := `"messages":[{"role":"user","content":"hello there"}],"max_tokens":4`
	_, plain := rawDo(t, "POST", ts.URL+"/v1/chat/completions", "", "application/json", strings.NewReader(`{`+msgs+`}`))
	var cc api.ChatCompletion
	if err := json.Unmarshal(plain, &cc); err != nil {
		t.Fatal(err)
	}
	for _, include := range []bool{true, false} {
		body := `{` + msgs + `,"stream":true}`
		if include {
			body = `{` + msgs + `,"stream":true,"stream_options":{"include_usage":true}}`
		}
		resp, out := rawDo(t, "POST", ts.URL+"/v1/chat/completions", "", "application/json", strings.NewReader(body))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, out)
		}
		var events []string
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events = append(events, d)
			}
		}
		if len(events) < 3 || events[len(events)-1] != "[DONE]" {
			t.Fatalf("events %q", events)
		}
		var last api.ChatCompletionChunk
		if err := json.Unmarshal([]byte(events[len(events)-2]), &last); err != nil {
			t.Fatal(err)
		}
		withUsage := strings.Count(string(out), `"usage"`)
		if !include {
			if withUsage != 0 || len(last.Choices) != 1 {
				t.Fatalf("usage without include_usage: %s", out)
			}
			continue
		}
		if withUsage != 1 || last.Usage == nil || len(last.Choices) != 0 || *last.Usage != cc.Usage {
			t.Fatalf("usage chunk %+v, want usage %+v; stream:\n%s", last, cc.Usage, out)
		}
	}
}
