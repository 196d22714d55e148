package pipeline

import (
	"testing"

	"github.com/medgr2/medgr2/data"
)

func TestCoherent(t *testing.T) {
	item := func(answer string, opts ...string) data.Item {
		it := data.Item{Question: "What is shown?", GTAnswer: answer}
		if err := it.SetOptions(opts); err != nil {
			t.Fatal(err)
		}
		return it
	}
	for _, tt := range []struct {
		name      string
		it        data.Item
		reasoning string
		want      bool
	}{
		{"names the chosen option", item("benign", "normal", "benign", "malignant"), "The Ultrasound image shows benign.", true},
		{"names another option", item("normal", "normal", "benign", "malignant"), "The Ultrasound image shows benign.", false},
		{"names both", item("benign", "normal", "benign", "malignant"), "It is benign, not malignant.", false},
		{"names none", item("benign", "normal", "benign", "malignant"), "The image is unclear.", false},
		{"case and punctuation", item("x_ray.", "x_ray.", "CT", "MRI"), "The image shows X ray", true},
		{"punctuation only", item("x_ray.", "x_ray.", "CT", "MRI"), "The image shows x_ray.", true},
		{"whole words only", item("1", "1", "12", "2"), "The image shows 12 cells.", false},
		{"option inside the chosen one", item("peripheral blood", "blood", "peripheral blood", "skin"),
			"The image shows peripheral blood.", true},
		{"empty answer", item("", "a", "b"), "The image shows a.", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Coherent(tt.it, tt.reasoning); got != tt.want {
				t.Errorf("Coherent(%q, %q) = %v, want %v", tt.it.GTAnswer, tt.reasoning, got, tt.want)
			}
		})
	}
}
