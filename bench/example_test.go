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
	rep, err := bench.Run(context.Background(), bench.Config{URL: ts.URL, Clients: 4, Requests: 40,
		Bodies: [][]byte{[]byte(`{"question":"a"}`), []byte(`{"question":"b"}`)}})
	fmt.Println(rep.Requests, rep.Errors, err)
	// Output: 40 0 <nil>
}

func ExampleRunSuite() {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})) // the server
	defer ts.Close()
	mix := [][]byte{[]byte(`{"question":"a"}`), []byte(`{"question":"b"}`), []byte(`{"question":"c"}`)}
	answer := func(ctx context.Context, batch []int) error { return nil } // decode, preprocess and answer mix[batch…] directly
	res, err := bench.RunSuite(context.Background(), bench.SuiteConfig{Direct: answer, Bodies: mix, URL: ts.URL,
		MaxBatch: 4, Workers: 2, Requests: 40})
	fmt.Println(res.Raw.Clients, res.Raw.BatchSize, res.Saturation.Clients, res.Saturation.Items, err)
	// Output: 2 3 16 40 <nil>
}
