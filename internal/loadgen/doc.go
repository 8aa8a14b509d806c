// Package loadgen is the engine of `workerca bench`: it runs a fixed
// number of clients that each make one request at a time, until a count of
// requests or a duration is reached, and reports throughput, latency
// percentiles and errors by code.
//
// It knows nothing of HTTP or of workerca: the caller's Op makes one
// request and returns nil, or an error whose code (see Fail and Code)
// names what went wrong. Recording is cheap so that a run measures the
// server, not itself: each client writes its latencies into a Histogram of
// its own (fixed size, no allocation per request) and its own counters;
// they are merged once, when the run ends.
//
// Typical use:
//
//	rep, err := loadgen.Run(ctx, loadgen.Config{
//		Mode:     "ocsp",
//		Clients:  64,
//		Duration: 20 * time.Second,
//		Op: func(ctx context.Context, c loadgen.Call) error {
//			resp, err := clients[c.Client].Do(requests[c.Seq%len(requests)])
//			...
//			if resp.StatusCode != http.StatusOK {
//				return loadgen.Fail(fmt.Sprintf("http_%d", resp.StatusCode), nil)
//			}
//			return nil
//		},
//	})
//	...
//	rep.WriteText(os.Stdout)
package loadgen
