package eval

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/medgr2/medgr2/data"
)

func TestImageSensitivity(t *testing.T) {
	item := func(id, img, modality string) data.Item {
		return data.Item{QuestionID: id, ImagePath: img, ModalityType: modality, Question: "q?",
			OptionA: "us", OptionB: "mic", GTAnswer: map[string]string{"US": "us", "Mic": "mic"}[modality]}
	}
	items := []data.Item{item("1", "a.png", "US"), item("2", "b.png", "US"), item("3", "c.png", "Mic")}
	// byImage answers from the image alone: A for ultrasound images.
	byImage := AnswererFunc(func(_ context.Context, its []data.Item) ([]Answer, error) {
		out := make([]Answer, len(its))
		for i, it := range its {
			if it.ImagePath == "c.png" {
				out[i] = Answer{OptionProbs: []float64{0.1, 0.9}}
			} else {
				out[i] = Answer{OptionProbs: []float64{0.9, 0.1}}
			}
		}
		return out, nil
	})
	blind := AnswererFunc(func(_ context.Context, its []data.Item) ([]Answer, error) {
		out := make([]Answer, len(its))
		for i := range its {
			out[i] = Answer{Text: "A"}
		}
		return out, nil
	})
	cases := []struct {
		name             string
		a                Answerer
		items            []data.Item
		want             Sensitivity
		wantErrSubstring string
	}{
		{"reads the image", byImage, items, Sensitivity{N: 3, MeanTV: 0.8, Changed: 1, Accuracy: 1, SwappedAccuracy: 0}, ""},
		{"ignores the image", blind, items, Sensitivity{N: 3, MeanTV: 0, Changed: 0, Accuracy: 2.0 / 3, SwappedAccuracy: 2.0 / 3}, ""},
		{"one modality", blind, items[:2], Sensitivity{}, "no item has an image of another modality"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ImageSensitivity(context.Background(), c.a, c.items, Options{})
			if c.wantErrSubstring != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErrSubstring) {
					t.Fatalf("err = %v, want %q", err, c.wantErrSubstring)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			close := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
			if got.N != c.want.N || !close(got.MeanTV, c.want.MeanTV) || !close(got.Changed, c.want.Changed) ||
				!close(got.Accuracy, c.want.Accuracy) || !close(got.SwappedAccuracy, c.want.SwappedAccuracy) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}
