package models_test

import (
	"context"
	"testing"

	"github.com/medgr2/medgr2/models"
)

// TestTraceVision checks that a traced call records the vision encoder's
// time when a request has an image, and none for text-only requests.
func TestTraceVision(t *testing.T) {
	v := openVLM(t, exportVLM(t, nil, 11))
	reqs := vqaRequests(t, v)
	for _, tt := range []struct {
		name   string
		reqs   []models.VQARequest
		vision bool
	}{
		{"with images", reqs, true},
		{"text only", reqs[1:2], false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var tr models.Trace
			if _, err := v.Answer(models.WithTrace(context.Background(), &tr), tt.reqs, models.ReasonOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := tr.Vision() > 0; got != tt.vision {
				t.Errorf("vision time %v, want > 0: %v", tr.Vision(), tt.vision)
			}
		})
	}
	if _, err := v.Answer(context.Background(), reqs, models.ReasonOptions{}); err != nil {
		t.Errorf("untraced call: %v", err)
	}
}
