package tokenizer

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"testing"
)

const (
	chatScript     = "../scripts/tokenizer-parity/chat.cjs"
	chatCorpusPath = "testdata/chat_corpus.json"
	vqaTokenizer   = "../models/testdata/vqa_tokenizer.json" // has the Qwen2-VL special tokens
)

// chatTemplates maps a corpus case's "template" to its tokenizer.json and
// tokenizer_config.json.
var chatTemplates = map[string]struct{ tokenizer, config string }{
	"qwen2_vl":   {vqaTokenizer, "testdata/qwen2_vl_tokenizer_config.json"},
	"qwen2_5_vl": {vqaTokenizer, "testdata/qwen2_5_vl_tokenizer_config.json"},
	"named":      {vqaTokenizer, "testdata/named_tokenizer_config.json"},
	"edge":       {vqaTokenizer, "testdata/edge_tokenizer_config.json"}, // engine edge cases
	"qwen3":      {qwen3JSON, qwen3Config},
}

// chatCase is one conversation of testdata/chat_corpus.json.
type chatCase struct {
	Name                string        `json:"name"`
	Template            string        `json:"template"`
	AddGenerationPrompt bool          `json:"add_generation_prompt"`
	Messages            []ChatMessage `json:"messages"`
}

// chatReference is what chat.cjs returns for a list of cases.
type chatReference struct {
	Text []string `json:"text"`
	IDs  [][]int  `json:"ids"`
}

func loadChatCorpus(t *testing.T) map[string][]chatCase {
	t.Helper()
	data, err := os.ReadFile(chatCorpusPath)
	if err != nil {
		t.Fatal(err)
	}
	var cases []chatCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	byTemplate := map[string][]chatCase{}
	for _, c := range cases {
		if _, ok := chatTemplates[c.Template]; !ok {
			t.Fatalf("case %q: unknown template %q", c.Name, c.Template)
		}
		byTemplate[c.Template] = append(byTemplate[c.Template], c)
	}
	return byTemplate
}

// runChatReference renders cases with transformers.js's apply_chat_template.
func runChatReference(t *testing.T, tokPath, cfgPath string, cases []chatCase) chatReference {
	t.Helper()
	requireFile(t, chatScript)
	requireFile(t, "../third_party/tokenizer-parity/node_modules/@huggingface/transformers/package.json")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for the parity test: %v", err)
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, chatScript, tokPath, cfgPath)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chat script: %v\n%s", err, stderr.String())
	}
	var ref chatReference
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatalf("chat script output: %v", err)
	}
	if len(ref.Text) != len(cases) || len(ref.IDs) != len(cases) {
		t.Fatalf("chat script returned %d texts and %d id lists for %d cases", len(ref.Text), len(ref.IDs), len(cases))
	}
	return ref
}

// TestChatTemplateParity renders every conversation of the corpus with the
// folder's chat template and checks text and ids against transformers.js.
func TestChatTemplateParity(t *testing.T) {
	for name, cases := range loadChatCorpus(t) {
		files := chatTemplates[name]
		t.Run(name, func(t *testing.T) {
			requireFile(t, files.tokenizer)
			requireFile(t, files.config)
			tok, err := Load(files.tokenizer)
			if err != nil {
				t.Fatal(err)
			}
			ct, err := LoadChatTemplate(files.config)
			if err != nil {
				t.Fatal(err)
			}
			ref := runChatReference(t, files.tokenizer, files.config, cases)
			for i, c := range cases {
				text, ids, err := tok.EncodeChat(ct, c.Messages, c.AddGenerationPrompt, nil)
				if err != nil {
					t.Errorf("%s: %v", c.Name, err)
					continue
				}
				if text != ref.Text[i] {
					t.Errorf("%s: text\n got %q\nwant %q", c.Name, text, ref.Text[i])
				}
				if !slices.Equal(ids, ref.IDs[i]) {
					t.Errorf("%s: ids\n got %v\nwant %v", c.Name, ids, ref.IDs[i])
				}
			}
		})
	}
}
