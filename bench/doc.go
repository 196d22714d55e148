// Package bench is the medgr2 load generator and latency report.
//
// [Run] drives a running server on loopback, either closed loop (N
// clients, each sending its next request when the last one returns) or
// open loop (requests started at a fixed rate whatever the latency), bounded
// by a request count and a duration. [Direct] runs batches straight through
// a model call to give the raw baseline in the same run. Both return a
// [Report]: throughput, p50/p90/p99/max latency and error counts, printed
// by [WriteTable] or encoded as JSON. A run stops starting requests at its
// duration and drains those in flight: they finish and count like the rest
// ([Report.Drained] says how many), so a deadline never shows up as errors.
//
// [RunSuite] compares a model behind a server with the same model called
// directly: five runs (raw batched, raw serial, server at low load, at 32
// clients and at saturation), each a named field of [SuiteResult], and the
// [Ratios] the goals are stated in. `medgr2 bench` wires it to a model
// bundle or fake models and an in-process server.
//
// # Usage
//
//	rep, err := bench.Run(ctx, bench.Config{URL: "http://127.0.0.1:8080", Path: "/v1/vqa",
//		Body: body, Clients: 32, Requests: 2000, Duration: 30 * time.Second})
//	bench.WriteTable(os.Stdout, []bench.Report{rep})
//
//	res, err := bench.RunSuite(ctx, bench.SuiteConfig{Direct: answerBatch, URL: url, Body: body})
//	fmt.Println(res.Saturation.Throughput, res.Ratios.BatchingGain)
package bench
