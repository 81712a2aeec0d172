// Command client_golang is the Go peer for bench/metrics.bench.ts: it builds the same 100k-series
// registry as the Node side with prometheus/client_golang, then either times Gather+encode in process
// (-mode encode, prints JSON) or serves /metrics over HTTP (-mode serve, prints "listening <port>").
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

func build(reg *prometheus.Registry, counters, gauges, perMetric, histSeries int) {
	labels := []string{"route", "code"}
	for m := 0; m < counters; m++ {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: fmt.Sprintf("bench_requests_%d_total", m),
			Help: "Requests handled, by route and code.",
		}, labels)
		reg.MustRegister(c)
		for i := 0; i < perMetric; i++ {
			c.WithLabelValues("/api/v1/resource/"+strconv.Itoa(i), "200").Add(float64(i*7 + m))
		}
	}
	for m := 0; m < gauges; m++ {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: fmt.Sprintf("bench_queue_depth_%d", m),
			Help: "Queue depth, by route and code.",
		}, labels)
		reg.MustRegister(g)
		for i := 0; i < perMetric; i++ {
			g.WithLabelValues("/api/v1/resource/"+strconv.Itoa(i), "200").Set(float64(i)*0.25 + float64(m))
		}
	}
	if histSeries > 0 {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bench_request_duration_seconds",
			Help:    "Request duration, by route and code.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, labels)
		reg.MustRegister(h)
		for i := 0; i < histSeries; i++ {
			o := h.WithLabelValues("/api/v1/resource/"+strconv.Itoa(i), "200")
			for k := 0; k < 5; k++ {
				o.Observe(float64((i+k)%100) / 37)
			}
		}
	}
}

func main() {
	mode := flag.String("mode", "encode", "encode | serve")
	iters := flag.Int("iters", 20, "encode iterations")
	counters := flag.Int("counters", 45, "counter families")
	gauges := flag.Int("gauges", 45, "gauge families")
	perMetric := flag.Int("per-metric", 1000, "series per counter/gauge family")
	histSeries := flag.Int("hist-series", 1000, "label sets of the histogram")
	flag.Parse()

	reg := prometheus.NewRegistry()
	build(reg, *counters, *gauges, *perMetric, *histSeries)

	switch *mode {
	case "encode":
		var buf bytes.Buffer
		ms := make([]float64, 0, *iters)
		cpu := make([]float64, 0, *iters)
		for i := 0; i < *iters; i++ {
			c0 := cpuMs()
			start := time.Now()
			buf.Reset()
			mfs, err := reg.Gather()
			if err != nil {
				panic(err)
			}
			enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
			for _, mf := range mfs {
				if err := enc.Encode(mf); err != nil {
					panic(err)
				}
			}
			ms = append(ms, float64(time.Since(start).Nanoseconds())/1e6)
			cpu = append(cpu, cpuMs()-c0)
		}
		_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"ms": ms, "cpuMs": cpu, "bytes": buf.Len(), "maxRssKb": peakRssKb()})
	case "serve":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		fmt.Printf("listening %d\n", ln.Addr().(*net.TCPAddr).Port)
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		panic(http.Serve(ln, mux))
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", *mode)
		os.Exit(2)
	}
}

// cpuMs is the process CPU time (all threads, user+system) so far, in ms: Go's GC and
// encoder run on several threads, so this is the fair counterpart of Node's main-thread CPU.
func cpuMs() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
}

// peakRssKb is VmHWM from /proc/self/status: this program's own peak. getrusage's ru_maxrss is not, on
// Linux: it is kept across fork and exec, so it reports the parent's peak when that was larger.
func peakRssKb() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "VmHWM:"), "kB")), 10, 64)
			return kb
		}
	}
	return -1
}
