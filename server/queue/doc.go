// Package queue runs batch jobs for the medgr2 server: a job is a list of
// scoring or VQA items, each processed once into a result line.
//
// A [Store] holds jobs, tasks and results. [Memory] is the in-process
// default (no dependencies, jobs live as long as the process); [Redis]
// distributes tasks across replicas on a Redis Stream with a consumer
// group:
//
//   - Submit XADDs one entry per item; workers read with XREADGROUP and
//     acknowledge with XACK after recording the result;
//   - entries left pending by a dead worker are taken over with XAUTOCLAIM
//     after RedisConfig.ClaimIdle;
//   - an item that fails RedisConfig.MaxAttempts times, or is delivered
//     that many times without completing, goes to a dead-letter stream and
//     gets an error result;
//   - results live in a hash per job written with HSETNX, so delivery is
//     at-least-once but every item has exactly one result, and a
//     restarted server still serves them.
//
// A [Worker] claims tasks and runs a [ProcessFunc] on them concurrently;
// on shutdown it drains in-flight tasks and re-queues the rest.
//
// # Usage
//
//	st := queue.NewRedis(redis.NewClient(&redis.Options{Addr: addr}), queue.RedisConfig{})
//	id, err := st.Submit(ctx, api.JobKindScore, lines)
//	w := &queue.Worker{Store: st, Consumer: "host-1", Process: process}
//	go w.Run(ctx)
//	status, err := st.Status(ctx, id)
package queue
