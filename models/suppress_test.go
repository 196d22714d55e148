package models

import (
	"slices"
	"testing"

	"github.com/medgr2/medgr2/runtime/generate"
)

func TestSuppressVision(t *testing.T) {
	v := &VLM{st: SpecialTokens{ImagePad: 5, VisionStart: 6, VisionEnd: 7}}
	base := make([]int, 1, 4) // spare capacity must not be written through
	base[0] = 9
	opts := []generate.Options{{SuppressTokens: base}, {}}
	got := v.suppressVision(opts)
	if want := []int{9, 5, 6, 7}; !slices.Equal(got[0].SuppressTokens, want) {
		t.Errorf("row 0 suppresses %v, want %v", got[0].SuppressTokens, want)
	}
	if want := []int{5, 6, 7}; !slices.Equal(got[1].SuppressTokens, want) {
		t.Errorf("row 1 suppresses %v, want %v", got[1].SuppressTokens, want)
	}
	if len(opts[0].SuppressTokens) != 1 || len(opts[1].SuppressTokens) != 0 || base[:2][1] != 0 {
		t.Errorf("caller's options changed: %v %v", opts[0].SuppressTokens, base[:2])
	}
}
