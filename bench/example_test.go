package bench_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/medgr2/medgr2/bench"
)

func Example() {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ts.Close()
	rep, err := bench.Run(context.Background(), bench.Config{URL: ts.URL, Clients: 4, Requests: 40})
	fmt.Println(rep.Requests, rep.Errors, err)
	// Output: 40 0 <nil>
}

func ExampleRunSuite() {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ts.Close()
	answerBatch := func(ctx context.Context, n int) error { return nil } // the model, called directly
	res, err := bench.RunSuite(context.Background(), bench.SuiteConfig{Direct: answerBatch, URL: ts.URL, MaxBatch: 4, Requests: 40})
	fmt.Println(res.Raw.BatchSize, res.Saturation.Clients, res.Saturation.Items, err)
	// Output: 4 8 40 <nil>
}
