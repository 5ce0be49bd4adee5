// Command etcdload is a put load generator for an etcd server, written on the
// official client (go.etcd.io/etcd/client/v3) because etcd's own benchmark tool
// (go.etcd.io/etcd/tools/v3) is not served by the module proxy here.
//
// It works like `benchmark put`: -clients goroutines share -conns gRPC
// connections (client i uses connection i % conns), and together they send
// -total requests, each writing a distinct key with a value of -val-size bytes.
// With -op=create each write is the transaction kube-apiserver sends for a
// create (put only if the key's mod revision is 0) instead of a plain put.
// A write counts when etcd has acknowledged it, which for a server started with
// its default settings means after the WAL fsync of the batch that holds it.
//
// Output: progress on stderr, then one JSON line on stdout with the rate and
// latency percentiles.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

type result struct {
	Op         string  `json:"op"`
	Total      int     `json:"total"`
	Clients    int     `json:"clients"`
	Conns      int     `json:"conns"`
	ValSize    int     `json:"val_size"`
	Seconds    float64 `json:"seconds"`
	PutsPerS   float64 `json:"puts_per_s"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
}

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "comma-separated etcd client URLs")
	conns := flag.Int("conns", 8, "gRPC connections shared by the clients")
	clients := flag.Int("clients", 512, "concurrent clients (goroutines)")
	total := flag.Int("total", 120000, "writes to send in all")
	valSize := flag.Int("val-size", 1536, "bytes per value")
	prefix := flag.String("prefix", "/registry/pods/bench/", "key prefix; keys are prefix + index")
	op := flag.String("op", "put", "put: plain Put; create: Txn(mod_revision == 0, Put) as kube-apiserver creates")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	if *conns < 1 || *clients < 1 || *total < 1 || *valSize < 0 {
		fail("-conns, -clients and -total must be >= 1 and -val-size >= 0")
	}
	if *op != "put" && *op != "create" {
		fail("-op must be put or create, not %q", *op)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	eps := strings.Split(*endpoints, ",")
	cs := make([]*clientv3.Client, *conns)
	for i := range cs {
		c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 10 * time.Second})
		if err != nil {
			fail("connect: %v", err)
		}
		defer c.Close()
		cs[i] = c
	}
	value := make([]byte, *valSize)
	if _, err := rand.Read(value); err != nil {
		fail("random value: %v", err)
	}
	val := string(value)

	var next, errs atomic.Int64
	var firstErr atomic.Value
	latencies := make([][]time.Duration, *clients)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			kv := cs[w%len(cs)]
			mine := make([]time.Duration, 0, *total / *clients + 1)
			for {
				i := next.Add(1) - 1
				if i >= int64(*total) {
					break
				}
				key := fmt.Sprintf("%s%09d", *prefix, i)
				t0 := time.Now()
				var err error
				if *op == "put" {
					_, err = kv.Put(ctx, key, val)
				} else {
					var resp *clientv3.TxnResponse
					resp, err = kv.Txn(ctx).
						If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
						Then(clientv3.OpPut(key, val)).Commit()
					if err == nil && !resp.Succeeded {
						err = fmt.Errorf("key %s already exists", key)
					}
				}
				if err != nil {
					if errs.Add(1) == 1 {
						firstErr.Store(err.Error())
					}
					if ctx.Err() != nil {
						break
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			latencies[w] = mine
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()

	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		idx := int(float64(len(all))*p) - 1
		if idx < 0 {
			idx = 0
		}
		return float64(all[idx].Microseconds()) / 1000
	}
	res := result{
		Op: *op, Total: *total, Clients: *clients, Conns: *conns, ValSize: *valSize,
		Seconds: elapsed, PutsPerS: float64(len(all)) / elapsed,
		P50Ms: pct(0.50), P99Ms: pct(0.99), Errors: errs.Load(),
	}
	if v, ok := firstErr.Load().(string); ok {
		res.FirstError = v
	}
	fmt.Fprintf(os.Stderr, "etcdload: %d %s of %d B from %d clients over %d conns in %.2fs: %.0f/s (p50 %.2f ms, p99 %.2f ms, %d errors)\n",
		len(all), *op, *valSize, *clients, *conns, elapsed, res.PutsPerS, res.P50Ms, res.P99Ms, res.Errors)
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if res.Errors > 0 {
		os.Exit(1)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "etcdload: "+format+"\n", args...)
	os.Exit(2)
}
