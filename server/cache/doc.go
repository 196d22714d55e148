// Package cache is the medgr2 server's response cache: an in-process LRU
// ([Memory], the default) or a Redis cache shared by replicas ([Redis]).
// Both implement [Cache]. Keys come from [Key]: model version + image hash
// + the request parameters, so a new model version never serves a stale
// answer.
//
// # Usage
//
//	c := cache.NewMemory(10000)
//	k := cache.Key("v1", imageSHA, "vqa", question, options)
//	if b, ok, _ := c.Get(ctx, k); ok { … }
//	_ = c.Set(ctx, k, body, time.Hour)
package cache
