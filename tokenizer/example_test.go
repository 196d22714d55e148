package tokenizer_test

import (
	"context"
	"fmt"
	"log"

	"github.com/medgr2/medgr2/tokenizer"
)

// Train a small tokenizer, then encode a VQA prompt and find the answer
// span that training computes its loss on.
func Example() {
	ctx := context.Background()
	texts := []string{
		"What modality is used for this image?", "Which organ is shown in this image?",
		"What modality is used to acquire this image?", "Computed Tomography", "Magnetic Resonance Imaging",
	}
	tok, err := tokenizer.TrainBPE(ctx, texts, tokenizer.TrainOptions{VocabSize: 300, MinFrequency: 1})
	if err != nil {
		log.Fatal(err)
	}
	e, err := tok.EncodePrompt(tokenizer.VQAPrompt{
		Question:    "What modality is used for this image?",
		Options:     []string{"Computed Tomography", "Magnetic Resonance Imaging"},
		ImageTokens: 4,
		Answer:      "<answer>A</answer>",
	})
	if err != nil {
		log.Fatal(err)
	}
	answer, err := tok.Decode(e.IDs[e.AnswerStart:e.AnswerEnd], false)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.VocabSize(), answer)
	// Output: 300 <answer>A</answer><|im_end|>
}

func ExampleTokenizer_Decode() {
	tok, err := tokenizer.TrainBPE(context.Background(), []string{"pneumonia", "normal"}, tokenizer.TrainOptions{MinFrequency: 1})
	if err != nil {
		log.Fatal(err)
	}
	ids, err := tok.Encode("<|im_start|>pneumonia<|im_end|>")
	if err != nil {
		log.Fatal(err)
	}
	all, _ := tok.Decode(ids, false)
	text, _ := tok.Decode(ids, true)
	fmt.Printf("%d ids\n%s\n%s\n", len(ids), all, text)
	// Output:
	// 3 ids
	// <|im_start|>pneumonia<|im_end|>
	// pneumonia
}

// Render a conversation with a folder's own chat template, expanding the
// image placeholder to the image's token count.
func ExampleChatTemplate() {
	ct, err := tokenizer.LoadChatTemplate("testdata/qwen2_vl_tokenizer_config.json")
	if err != nil {
		log.Fatal(err)
	}
	msgs := []tokenizer.ChatMessage{{Role: "user", Parts: []tokenizer.ChatPart{
		{Type: tokenizer.ChatImage},
		{Type: tokenizer.ChatText, Text: "What modality is this?"},
	}}}
	text, err := ct.Render(msgs, true)
	if err != nil {
		log.Fatal(err)
	}
	text, err = tokenizer.ExpandImagePads(text, []int{2})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(text)
	// Output:
	// <|im_start|>system
	// You are a helpful assistant.<|im_end|>
	// <|im_start|>user
	// <|vision_start|><|image_pad|><|image_pad|><|vision_end|>What modality is this?<|im_end|>
	// <|im_start|>assistant
}
