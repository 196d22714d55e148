package server_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/medgr2/medgr2/server"
	"github.com/medgr2/medgr2/server/batch"
	"github.com/medgr2/medgr2/server/fake"
)

func Example() {
	s, err := server.New(server.Config{Batch: batch.Config{MaxBatch: 16}},
		server.Models{VQA: fake.NewVQA(fake.Options{})})
	if err != nil {
		panic(err)
	}
	defer s.Close(context.Background())
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	// A request missing its image is refused with a JSON error body.
	resp, _ := ts.Client().Post(ts.URL+"/v1/vqa", "application/json",
		strings.NewReader(`{"question":"Which modality?","options":["CT","MRI"]}`))
	fmt.Println(resp.StatusCode)
	// Output: 400
}
