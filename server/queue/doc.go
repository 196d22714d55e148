// Package queue runs batch jobs for the medgr2 server: a job is a list of
// scoring or VQA items, each processed once into a result line.
//
// A [Store] holds jobs, tasks and results. Two are provided:
//
//   - [Bolt], the default: an embedded bbolt database (one file,
//     [BoltFile], in the server's state folder). Every change is one
//     fsynced transaction, and an item's result commits together with the
//     removal of its task, so each item gets exactly one result. A
//     restarted process takes up the tasks that were queued or running; an
//     item claimed MaxAttempts times without an outcome (it kept killing
//     the process) is dead-lettered. One process holds the file at a time.
//   - [Redis], which distributes tasks across replicas on a Redis Stream
//     with a consumer group: Submit XADDs one entry per item; workers read
//     with XREADGROUP and acknowledge with XACK after recording the
//     result; entries left pending by a dead worker are taken over with
//     XAUTOCLAIM after RedisConfig.ClaimIdle; results live in a hash per
//     job written with HSETNX. Redis must persist with appendonly
//     ([CheckDurable]) or a Redis crash loses jobs.
//
// Finished and cancelled jobs are kept for a result TTL (default
// [DefaultResultTTL]), then deleted. Job ids carry a tag keyed by the
// store's id key, so an id the store issued but no longer holds answers
// [ErrLost] (a *[LostError] saying why) rather than [ErrNotFound]. A store
// that cannot be reached answers errors matching [ErrUnavailable].
//
// A [Worker] claims tasks and runs a [ProcessFunc] on them concurrently;
// when its context ends it stops claiming, lets tasks in flight finish
// within its drain time, and re-queues the rest.
//
// # Usage
//
//	st, err := queue.OpenBolt(stateDir, queue.BoltConfig{})
//	defer st.Close()
//	id, err := st.Submit(ctx, api.JobKindScore, owner, lines)
//	w := &queue.Worker{Store: st, Consumer: "host-1", Process: process}
//	go w.Run(ctx)
//	job, err := st.Status(ctx, id)
package queue
