package bench

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParsePadding(t *testing.T) {
	const m = PaddingMetric
	tests := []struct {
		name, body, role string
		want             Padding
		err              error
	}{
		{"both kinds", "# TYPE " + m + " counter\n" + m + `{kind="prompt",role="vqa"} 300` + "\n" + m + `{kind="padding",role="vqa"} 100` + "\n",
			"vqa", Padding{PromptTokens: 300, PaddingTokens: 100, Share: 0.25}, nil},
		{"other role only", m + `{kind="prompt",role="reward"} 7` + "\n", "vqa", Padding{}, nil},
		{"other role ignored", m + `{kind="prompt",role="reward"} 7` + "\n" + m + `{kind="prompt",role="vqa"} 5` + "\n",
			"vqa", Padding{PromptTokens: 5}, nil},
		{"no metric", "# TYPE go_goroutines gauge\ngo_goroutines 12\n", "vqa", Padding{}, nil},
		{"not the text format", "<html>oops</html>\n", "vqa", Padding{}, ErrMetrics},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePadding(strings.NewReader(tc.body), tc.role)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("ParsePadding = %+v, %v; want %+v, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestPaddingSince(t *testing.T) {
	before := Padding{PromptTokens: 100, PaddingTokens: 50, Share: 1.0 / 3}
	after := Padding{PromptTokens: 400, PaddingTokens: 150, Share: 0.27}
	if got, want := after.Since(before), (Padding{PromptTokens: 300, PaddingTokens: 100, Share: 0.25}); got != want {
		t.Errorf("Since = %+v, want %+v", got, want)
	}
	if got := before.Since(before); got != (Padding{}) || got.Slots() != 0 {
		t.Errorf("no batches between readings: %+v", got)
	}
}

func TestReadPadding(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(PaddingMetric + `{kind="padding",role="vqa"} 3` + "\n" + PaddingMetric + `{kind="prompt",role="vqa"} 9` + "\n"))
	}))
	defer ts.Close()
	got, err := ReadPadding(context.Background(), ts.URL, "vqa")
	if err != nil || got != (Padding{PromptTokens: 9, PaddingTokens: 3, Share: 0.25}) {
		t.Fatalf("ReadPadding = %+v, %v", got, err)
	}
	if _, err := ReadPadding(context.Background(), "http://192.0.2.1:9", "vqa"); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("remote: err %v", err)
	}
}

func TestBatchesPadding(t *testing.T) {
	lengths := []int{10, 8, 5, 5, 7}
	tests := []struct {
		batches [][]int
		want    Padding
	}{
		{[][]int{{0, 1}, {2, 3}, {4}}, Padding{PromptTokens: 35, PaddingTokens: 2, Share: 2.0 / 37}},
		{[][]int{{0, 1, 2, 3, 4}}, Padding{PromptTokens: 35, PaddingTokens: 15, Share: 0.3}},
		{Singles(5), Padding{PromptTokens: 35}},
		{nil, Padding{}},
	}
	for _, tc := range tests {
		if got := BatchesPadding(lengths, tc.batches); got != tc.want {
			t.Errorf("BatchesPadding(%v) = %+v, want %+v", tc.batches, got, tc.want)
		}
	}
}
