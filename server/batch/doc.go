// Package batch is the dynamic batcher that sits in front of every model
// role in the medgr2 server.
//
// # Policy
//
// A [Batcher] feeds one model from Config.Workers goroutines (default 1):
// with one worker the model is never called concurrently; with N, up to N
// batches run at once (ONNX Runtime sessions are safe for concurrent Run),
// and a worker takes the next batch as soon as it is free. Requests enter
// through [Batcher.Submit]:
//
//   - a request that finds the queue empty and a worker idle (with
//     MaxDelay 0) runs at once, alone, on its caller's goroutine, counted
//     against the Workers batches that may run: a request alone pays no
//     handoff to a worker and back;
//   - admission is by semaphore: at most Config.QueueSize requests wait;
//     the next one gets [ErrQueueFull] at once (the server answers 429);
//   - the loop wakes by channel when work arrives, builds a batch of up to
//     Config.MaxBatch requests and runs it;
//   - requests carry a padding key (a sequence-length bucket, such as
//     [LengthKey] of the prompt's tokens): only equal keys share a batch,
//     and the fullest bucket goes first unless another has been passed
//     over as many times as there are buckets queued, so batches are as
//     large as the queue allows and no bucket starves; with
//     Config.MergeKeys a batch with room also takes the requests of that
//     many keys below its own (shorter prompts, padded up), and [Plan]
//     gives the batches the policy forms from a queue; [PaddingMeter]
//     measures the padding share that is left;
//   - keys at or over Config.HeavyKey (long prompts) run on at most
//     Config.HeavyWorkers workers at once (default Workers−1), so short
//     requests queued behind long ones keep a worker;
//   - a request whose context ends before its batch starts is removed from
//     the queue and never reaches the model;
//   - Config.MaxDelay lets the oldest request wait for the batch to fill
//     while the model is idle; with 0 a batch starts as soon as the model
//     is free and requests that arrive during a run form the next batch;
//   - a batch of several requests that fails is run again one request at
//     a time, so a bad input fails its own request only (the model is
//     called once more per request, and only after a failure).
//
// [Batcher.Close] stops admission and drains the queue.
//
// # Usage
//
//	b := batch.New(batch.Config{Name: "vqa", MaxBatch: 16},
//		func(ctx context.Context, in []string) ([]int, error) {
//			out := make([]int, len(in))
//			for i, s := range in {
//				out[i] = len(s)
//			}
//			return out, nil
//		})
//	defer b.Close(context.Background())
//	n, stats, err := b.Submit(ctx, "hello", 0)
package batch
