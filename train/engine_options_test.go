package train

import (
	"testing"

	"github.com/medgr2/medgr2/runtime"
)

// TestEngineSpinningDefault checks that NewEngine turns intra-op spinning
// off unless the caller sets it, without touching the caller's map.
func TestEngineSpinningDefault(t *testing.T) {
	cfg := tinyArch(40)
	st := randomState(t, cfg, false, 1)
	env := openEnv(t)
	cases := []struct {
		name   string
		config map[string]string
		want   string
	}{
		{"default-off", nil, "0"},
		{"other-entries-kept", map[string]string{"session.inter_op.allow_spinning": "0"}, "0"},
		{"explicit-on", map[string]string{SpinningConfigKey: "1"}, "1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eng, err := NewEngine(env, EngineConfig{Objective: SFT, Arch: cfg, Session: runtime.SessionOptions{Config: tc.config}}, st)
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()
			if got := eng.cfg.Session.Config[SpinningConfigKey]; got != tc.want {
				t.Fatalf("%s = %q, want %q", SpinningConfigKey, got, tc.want)
			}
			for k, v := range tc.config {
				if eng.cfg.Session.Config[k] != v {
					t.Fatalf("config %s = %q, want %q", k, eng.cfg.Session.Config[k], v)
				}
			}
			if _, set := tc.config[SpinningConfigKey]; tc.config != nil && set != (tc.want == "1") {
				t.Fatalf("the caller's config map was modified: %v", tc.config)
			}
		})
	}
}
