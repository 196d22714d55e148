package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
)

// doctorBundle opens the bundle in dir on dev, prints what it holds and
// runs one small forward pass through it (option scoring for VQA and
// generator bundles, a score for reward bundles).
func doctorBundle(ctx context.Context, env *runtime.Env, dev runtime.Device, dir string, dtype models.DType, stdout io.Writer) (err error) {
	v, err := models.Open(ctx, dir, models.VLMOptions{Env: env, Device: dev, DType: dtype})
	if err != nil {
		fmt.Fprintf(stdout, "bundle %s: FAIL\n", dir)
		return fmt.Errorf("doctor: %w", err)
	}
	defer func() { err = errors.Join(err, v.Close()) }()
	m := v.Manifest()
	roles := make([]string, len(m.Roles))
	for i, r := range m.Roles {
		roles[i] = string(r)
	}
	a := m.Architecture
	fmt.Fprintf(stdout, "bundle: %s %s (%s), roles %s, graphs %s\n", m.Name, m.Version, dir, strings.Join(roles, ", "), m.Files.Decoder)
	fmt.Fprintf(stdout, "architecture: vocab %d, hidden %d, layers %d, heads %d/%d kv, vision depth %d\n",
		a.VocabSize, a.HiddenSize, a.NumLayers, a.NumHeads, a.NumKVHeads, a.Vision.Depth)
	vis, emb, dec := v.Sessions()
	for _, s := range []*runtime.Session{vis, emb, dec} {
		fmt.Fprintf(stdout, "session %s: %d inputs, %d outputs on %s\n", s.Name(), len(s.Inputs()), len(s.Outputs()), s.Device())
	}
	if m.HasRole(models.RoleReward) {
		scores, err := v.Score(ctx, []models.RewardRequest{{Question: "Which imaging modality is shown?",
			Options: []string{"CT", "MRI"}, Response: "<think>check</think><answer>A</answer>"}})
		if err != nil {
			return fmt.Errorf("doctor: forward pass: %w", err)
		}
		fmt.Fprintf(stdout, "forward pass: score %.4f\n", scores[0])
	} else {
		ans, err := v.Answer(ctx, []models.VQARequest{{Question: "Which imaging modality is shown?", Options: []string{"CT", "MRI"}}}, models.ReasonOptions{})
		if err != nil {
			return fmt.Errorf("doctor: forward pass: %w", err)
		}
		fmt.Fprintf(stdout, "forward pass: option probabilities %.4f\n", ans[0].Probs)
	}
	fmt.Fprintln(stdout, "bundle: OK")
	return nil
}
