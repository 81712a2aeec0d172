// Go's httputil.ReverseProxy round-robining over backends: the reference of issue 12's benchmark.
// Usage: go_reverse_proxy <listen addr> <backend url>...
package main

import (
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync/atomic"
)

func main() {
	if len(os.Args) < 3 {
		log.Fatal("usage: go_reverse_proxy <listen> <backend>...")
	}
	var targets []*url.URL
	for _, raw := range os.Args[2:] {
		u, err := url.Parse(raw)
		if err != nil {
			log.Fatal(err)
		}
		targets = append(targets, u)
	}
	var next uint64
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 256
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			t := targets[atomic.AddUint64(&next, 1)%uint64(len(targets))]
			r.SetURL(t)
			r.SetXForwarded()
		},
		Transport: transport,
	}
	log.Fatal(http.ListenAndServe(os.Args[1], proxy))
}
