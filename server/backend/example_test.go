package backend_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/medgr2/medgr2/models"
	"github.com/medgr2/medgr2/runtime"
	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/backend"
)

// Open the bundles and serve them; the adapters plug straight into
// server.New.
func ExampleOpen() {
	ctx := context.Background()
	m, err := backend.Open(ctx, backend.Options{VQA: bundles.vqa, Reward: bundles.reward, Device: runtime.CPU})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	log := slog.New(slog.DiscardHandler)
	s, err := server.New(server.Config{DecodeImage: m.DecodeImage(nil), JobWorkers: -1, Logger: log}, m.Server())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close(ctx)
	fmt.Println(m.VQA.Info().Name, m.Reward.Info().Role, m.Generator == nil)
	// Output: test-vqa reward true
}

// Response is the assistant turn the reward model reads.
func ExampleResponse() {
	fmt.Println(backend.Response("The lungs are clear.", 0))
	fmt.Println(models.AnswerPrefix("<think>Clear lungs.</think><answer>A</answer>"))
	// Output:
	// <think>The lungs are clear.</think><answer>A</answer>
	// <think>Clear lungs.</think><answer>
}
