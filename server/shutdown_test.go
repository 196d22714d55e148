package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/api"
	"github.com/medgr2/medgr2/server/fake"
)

// TestGracefulShutdown checks that requests in flight finish with 200 when
// the server is told to stop, and that it then stops accepting.
func TestGracefulShutdown(t *testing.T) {
	var logs bytes.Buffer
	models := fakes()
	models.VQA = fake.NewVQA(fake.Options{BatchCost: 300 * time.Millisecond})
	s, err := server.New(server.Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}, models)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l, 5*time.Second) }()
	waitReady(t, url)
	const secret = "QUESTION-TEXT-MUST-NOT-BE-LOGGED"
	req := api.VQARequest{Image: dataURI("image/png", readFile(t, xrayPNG)), Question: secret, Options: []string{"a", "b"}}
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = do(t, "POST", url+"/v1/vqa", "", req, nil).StatusCode }()
	}
	time.Sleep(100 * time.Millisecond) // requests are in the batcher
	cancel()
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatalf("Serve returned %v", err)
	}
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("request %d in flight got %d during shutdown", i, c)
		}
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Fatal("server still accepting after shutdown")
	}
	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), "iVBOR") {
		t.Fatal("logs contain question text or image bytes")
	}
	if !strings.Contains(logs.String(), `"image_hmac":"`) || !strings.Contains(logs.String(), `"request_id":"`) {
		t.Fatalf("logs lack request id or image hash:\n%s", logs.String())
	}
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
