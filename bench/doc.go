// Package bench is the medgr2 load generator and latency report.
//
// # Runs
//
// [Run] drives a running server on loopback, either closed loop (N
// clients, each sending its next request when the last one returns) or
// open loop (requests started at a fixed rate whatever the latency), bounded
// by a request count and a duration. Requests send the bodies of a mix in
// turn. [Direct] calls a model in-process from N goroutines on given
// batches of the mix: the raw baseline. Both return a [Report]: throughput,
// p50/p90/p95/p99/max latency, error counts, the process's [CPU] use, and,
// for server runs, the means of the server's per-request timing
// ([Stages]: queue, model, the rest). A run stops starting requests at
// its duration and drains those in flight: they finish and count like the
// rest ([Report.Drained] says how many), so a deadline never shows up as
// errors.
//
// # Mix
//
// [DefaultMix] builds requests from the real data in ../shared/data:
// OmniMedVQA knee X-ray and sperm items, PneumoniaMNIST, BUSI and BCCD
// images, 28² to 640×480, with prompts from one line to a long clinical
// context. [LoadMix] reads one from an OmniMedVQA JSON or JSONL file.
//
// # Suite
//
// [RunSuite] compares a model behind a server with the same model called
// directly, doing the same work (decode, preprocess, model) in the same
// process: five runs (raw with the server's workers on its batches, raw
// one request at a time, the server at 1 client, at 32 and at
// saturation), each a named field of [SuiteResult], with the server's
// padding share read from its /metrics ([ReadPadding]) around each
// server run, and the [Ratios] the goals are stated in. [WriteTable] prints
// the runs, [WritePNG] charts them. `medgr2 bench` wires it to a model
// bundle and an in-process server.
//
// # Usage
//
//	mix, err := bench.DefaultMix("../shared/data", 64)
//	bodies, err := bench.Bodies(mix)
//	rep, err := bench.Run(ctx, bench.Config{URL: "http://127.0.0.1:8080", Path: "/v1/vqa",
//		Bodies: bodies, Clients: 32, Requests: 2000, Duration: 30 * time.Second})
//	bench.WriteTable(os.Stdout, []bench.Report{rep})
//
//	res, err := bench.RunSuite(ctx, bench.SuiteConfig{Direct: answer, Bodies: bodies, URL: url, Workers: 2})
//	fmt.Println(res.Saturation.Throughput, res.Ratios.BatchingGain)
package bench
