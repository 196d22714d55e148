package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/medgr2/medgr2/server/batch"
)

// PaddingMetric is the server's counter of the prompt token slots of its
// model batches, labelled role and kind ("prompt" for real tokens,
// "padding" for the padding rows are filled with).
const PaddingMetric = "medgr2_batch_prompt_tokens_total"

// ErrMetrics reports a /metrics answer that could not be read.
var ErrMetrics = errors.New("bench: bad /metrics answer")

// Padding counts prompt token slots of a server's model batches (rows ×
// the longest prompt of the batch): real prompt tokens and padding.
type Padding struct {
	PromptTokens  float64 `json:"prompt_tokens"`
	PaddingTokens float64 `json:"padding_tokens"`
	// Share is PaddingTokens ÷ (PromptTokens + PaddingTokens); 0 when
	// there were no slots (see Slots).
	Share float64 `json:"share"`
}

// Slots returns the token slots counted: 0 when the server reported none
// (no batches, or a model that does not count its prompt tokens).
func (p Padding) Slots() float64 { return p.PromptTokens + p.PaddingTokens }

// Since returns the slots counted between an earlier reading and p.
func (p Padding) Since(earlier Padding) Padding {
	return paddingOf(p.PromptTokens-earlier.PromptTokens, p.PaddingTokens-earlier.PaddingTokens)
}

func paddingOf(prompt, padding float64) Padding {
	p := Padding{PromptTokens: prompt, PaddingTokens: padding}
	if s := p.Slots(); s > 0 {
		p.Share = padding / s
	}
	return p
}

// ParsePadding reads PaddingMetric for role from a Prometheus text
// exposition. A server without the metric (or without series for role)
// gives zero counts; a body that is not the text format is ErrMetrics.
func ParsePadding(r io.Reader, role string) (Padding, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return Padding{}, fmt.Errorf("%w: %w", ErrMetrics, err)
	}
	var prompt, padding float64
	for _, m := range families[PaddingMetric].GetMetric() {
		var mRole, kind string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "role":
				mRole = l.GetValue()
			case "kind":
				kind = l.GetValue()
			}
		}
		if mRole != role {
			continue
		}
		v := m.GetCounter().GetValue() + m.GetUntyped().GetValue() // a counter, or a sample without # TYPE
		switch kind {
		case "prompt":
			prompt += v
		case "padding":
			padding += v
		}
	}
	return paddingOf(prompt, padding), nil
}

// ReadPadding fetches baseURL/metrics on loopback and returns the padding
// counters of role (see ParsePadding).
func ReadPadding(ctx context.Context, baseURL, role string) (Padding, error) {
	c := Config{URL: baseURL}
	if err := c.defaults(); err != nil {
		return Padding{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	if err != nil {
		return Padding{}, fmt.Errorf("bench: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Padding{}, fmt.Errorf("bench: read padding: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Padding{}, fmt.Errorf("%w: %s/metrics answered %s", ErrMetrics, baseURL, resp.Status)
	}
	return ParsePadding(resp.Body, role)
}

// BatchesPadding returns the token slots of one pass over batches (index
// lists into lengths, each request's prompt tokens), each batch padded to
// its longest prompt as the model pads it: the padding of a direct run on
// those batches.
func BatchesPadding(lengths []int, batches [][]int) Padding {
	var prompt, padding int
	for _, b := range batches {
		ls := make([]int, len(b))
		for k, i := range b {
			ls[k] = lengths[i]
		}
		pad, total := batch.Padding(ls)
		prompt += total - pad
		padding += pad
	}
	return paddingOf(float64(prompt), float64(padding))
}
