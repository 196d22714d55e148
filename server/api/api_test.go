package api

import (
	"encoding/json"
	"testing"
)

func TestChatContentUnmarshal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr bool
	}{
		{"string", `"hello"`, 1, false},
		{"parts", `[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:x"}}]`, 2, false},
		{"number", `42`, 0, true},
		{"object", `{"type":"text"}`, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c ChatContent
			err := json.Unmarshal([]byte(tc.in), &c)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if len(c.Parts) != tc.want {
				t.Fatalf("got %d parts, want %d", len(c.Parts), tc.want)
			}
		})
	}
}

func TestChatContentRoundTrip(t *testing.T) {
	in := ChatMessage{Role: "user", Content: ChatContent{Parts: []ContentPart{{Type: "text", Text: "hi"}}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"role":"user","content":"hi"}` {
		t.Fatalf("got %s", b)
	}
}
