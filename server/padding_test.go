package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/batch"
	"github.com/medgr2/medgr2/server/fake"
	"github.com/medgr2/medgr2/server/model"
)

// countingVQA is a fake VQA model that counts a prompt as one token per
// byte of its question and records the prompt lengths of every batch.
type countingVQA struct {
	*fake.VQA
	mu      sync.Mutex
	batches [][]int // prompt lengths of each batch's inputs
}

var errTooLong = errors.New("prompt too long")

func (m *countingVQA) PromptIDs(in model.VQAInput) ([]int, error) {
	if len(in.Question) > 1000 {
		return nil, fmt.Errorf("%w: %w", &server.RequestError{Msg: "vqa: the model cannot take this input"}, errTooLong)
	}
	return make([]int, len(in.Question)), nil
}

func (m *countingVQA) AnswerBatch(ctx context.Context, in []model.VQAInput) ([]model.VQAOutput, error) {
	lengths := make([]int, len(in))
	for i, x := range in {
		lengths[i] = len(x.PromptIDs)
	}
	m.mu.Lock()
	m.batches = append(m.batches, lengths)
	m.mu.Unlock()
	return m.VQA.AnswerBatch(ctx, in)
}

// TestVQABatchesByPromptLength sends short and long prompts at once to a
// model that counts prompt tokens: no batch mixes the two lengths, the
// inputs carry their lengths, and /metrics reports the prompt and padding
// tokens of the batches.
func TestVQABatchesByPromptLength(t *testing.T) {
	m := &countingVQA{VQA: fake.NewVQA(fake.Options{BatchCost: time.Millisecond})}
	_, ts := start(t, server.Config{Batch: batch.Config{MaxBatch: 8, MaxDelay: 100 * time.Millisecond}}, server.Models{VQA: m})
	img := dataURI("image/png", readFile(t, xrayPNG))
	// Distinct questions (no cache hits) of two lengths: 20 and 400 bytes.
	question := func(i int) string {
		if i%2 == 1 {
			return fmt.Sprintf("%s %d?", strings.Repeat("l", 394), 1000+i)
		}
		return fmt.Sprintf("%s %d?", strings.Repeat("s", 14), 1000+i)
	}
	short, long := question(0), question(1)
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			req := api.VQARequest{Image: img, Question: question(i), Options: []string{"yes", "no"}}
			var out api.VQAResponse
			if resp := do(t, "POST", ts.URL+"/v1/vqa", "", req, &out); resp.StatusCode != http.StatusOK {
				t.Errorf("request %d: status %d", i, resp.StatusCode)
			}
		})
	}
	wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	sawBatch := false
	for _, b := range m.batches {
		if len(b) == 1 && b[0] == len("warm-up") {
			continue // the warm-up request
		}
		for _, n := range b {
			if n != len(short) && n != len(long) {
				t.Fatalf("batch %v: input without its prompt length", b)
			}
			if n != b[0] {
				t.Errorf("batch %v mixes prompt lengths %d and %d", b, b[0], n)
			}
		}
		sawBatch = sawBatch || len(b) > 1
	}
	if !sawBatch {
		t.Errorf("no batch of more than one request formed: %v", m.batches)
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`medgr2_batch_prompt_tokens_total{kind="padding",role="vqa"} 0`,
		fmt.Sprintf(`medgr2_batch_prompt_tokens_total{kind="prompt",role="vqa"} %d`, 6*len(short)+6*len(long)+len("warm-up")),
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestVQAPromptCountError checks a prompt the model cannot count is that
// request's 400, before it reaches a batch.
func TestVQAPromptCountError(t *testing.T) {
	m := &countingVQA{VQA: fake.NewVQA(fake.Options{})}
	_, ts := start(t, server.Config{}, server.Models{VQA: m})
	req := api.VQARequest{Image: dataURI("image/png", readFile(t, xrayPNG)), Question: strings.Repeat("q", 1001), Options: []string{"yes", "no"}}
	if resp := do(t, "POST", ts.URL+"/v1/vqa", "", req, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.batches) != 1 {
		t.Fatalf("batches %v: the bad request reached the model", m.batches)
	}
}
