// Command etcd is a single-member etcd for local control planes. It embeds go.etcd.io/etcd/server/v3
// at the version kube-apiserver's own go.mod requires, so the pair is always compatible (Debian ships
// etcd 3.4, older than recent apiservers expect).
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"go.etcd.io/etcd/server/v3/embed"
)

func parseURLs(flagName, value string) []url.URL {
	var out []url.URL
	for _, s := range strings.Split(value, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			fmt.Fprintf(os.Stderr, "etcd: bad --%s %q: %v\n", flagName, s, err)
			os.Exit(2)
		}
		out = append(out, *u)
	}
	return out
}

func main() {
	name := flag.String("name", "default", "member name")
	dataDir := flag.String("data-dir", "", "data directory (required)")
	listenClient := flag.String("listen-client-urls", "http://127.0.0.1:2379", "client listen URLs")
	advertiseClient := flag.String("advertise-client-urls", "", "advertised client URLs (default: listen URLs)")
	listenPeer := flag.String("listen-peer-urls", "http://127.0.0.1:2380", "peer listen URLs")
	advertisePeer := flag.String("initial-advertise-peer-urls", "", "advertised peer URLs (default: listen URLs)")
	initialCluster := flag.String("initial-cluster", "", "initial cluster (default: <name>=<advertised peer URL>)")
	_ = flag.String("initial-cluster-state", "new", "accepted for compatibility with etcd; only \"new\" is supported")
	logLevel := flag.String("log-level", "warn", "debug, info, warn, error")
	noFsync := flag.Bool("unsafe-no-fsync", false, "skip fsync: faster, loses data on a crash (tests only)")
	quota := flag.Int64("quota-backend-bytes", 0, "backend size quota (0 = etcd default)")
	// TLS, named as etcd's own flags, so one command line works with this program and with a real etcd
	// (KUBEBUILDER_ASSETS): https:// URLs need a certificate; *-client-cert-auth requires one from callers.
	certFile := flag.String("cert-file", "", "client-facing TLS certificate (https client URLs)")
	keyFile := flag.String("key-file", "", "key of --cert-file")
	trustedCA := flag.String("trusted-ca-file", "", "CA that client certificates must chain to")
	clientCertAuth := flag.Bool("client-cert-auth", false, "require a client certificate signed by --trusted-ca-file")
	peerCertFile := flag.String("peer-cert-file", "", "peer TLS certificate (https peer URLs)")
	peerKeyFile := flag.String("peer-key-file", "", "key of --peer-cert-file")
	peerTrustedCA := flag.String("peer-trusted-ca-file", "", "CA that peer certificates must chain to")
	peerClientCertAuth := flag.Bool("peer-client-cert-auth", false, "require a peer certificate signed by --peer-trusted-ca-file")
	flag.Parse()
	if *dataDir == "" {
		fmt.Fprintln(os.Stderr, "etcd: --data-dir is required")
		os.Exit(2)
	}
	if *advertiseClient == "" {
		*advertiseClient = *listenClient
	}
	if *advertisePeer == "" {
		*advertisePeer = *listenPeer
	}

	cfg := embed.NewConfig()
	cfg.Name = *name
	cfg.Dir = *dataDir
	cfg.ListenClientUrls = parseURLs("listen-client-urls", *listenClient)
	cfg.AdvertiseClientUrls = parseURLs("advertise-client-urls", *advertiseClient)
	cfg.ListenPeerUrls = parseURLs("listen-peer-urls", *listenPeer)
	cfg.AdvertisePeerUrls = parseURLs("initial-advertise-peer-urls", *advertisePeer)
	cfg.InitialCluster = *initialCluster
	if cfg.InitialCluster == "" {
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	}
	cfg.LogLevel = *logLevel
	cfg.UnsafeNoFsync = *noFsync
	cfg.ClientTLSInfo.CertFile = *certFile
	cfg.ClientTLSInfo.KeyFile = *keyFile
	cfg.ClientTLSInfo.TrustedCAFile = *trustedCA
	cfg.ClientTLSInfo.ClientCertAuth = *clientCertAuth
	cfg.PeerTLSInfo.CertFile = *peerCertFile
	cfg.PeerTLSInfo.KeyFile = *peerKeyFile
	cfg.PeerTLSInfo.TrustedCAFile = *peerTrustedCA
	cfg.PeerTLSInfo.ClientCertAuth = *peerClientCertAuth
	if *quota > 0 {
		cfg.QuotaBackendBytes = *quota
	}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd: start: %v\n", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintf(os.Stderr, "etcd: ready, serving clients on %s\n", *advertiseClient)
	case err := <-e.Err():
		fmt.Fprintf(os.Stderr, "etcd: %v\n", err)
		os.Exit(1)
	case <-sig:
		e.Close()
		os.Exit(0)
	}
	select {
	case err := <-e.Err():
		fmt.Fprintf(os.Stderr, "etcd: %v\n", err)
		e.Close()
		os.Exit(1)
	case <-sig:
		e.Close()
	}
}
